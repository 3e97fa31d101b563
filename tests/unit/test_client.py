"""The CLI's A2A client: reading SSE events, URL checks, endpoint and card URLs, how long each call waits,
and what each kind of answer becomes (results, JSON-RPC errors, transport errors, timeouts), over
httpx's MockTransport."""

from __future__ import annotations

import functools
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from gateway.cli import build_parser
from gateway.client.rpc import (
    A2AClient,
    RpcError,
    TransportError,
    card_urls,
    check_url,
    describe,
    endpoint_url,
)
from gateway.client.v1 import (
    params_to_v1,
    result_from_v1,
    speaks_v1,
    state_filter,
    state_from_v1,
    task_from_v1,
)
from protocol.v1 import artifact_update_to_v1, status_update_to_v1, task_to_v1
from tests.a2a_schema import assert_valid
from tests.a2a_v1_schema import assert_valid_v1

URL = "http://a2a.test/"
TASK: dict[str, Any] = {
    "id": "t1",
    "contextId": "c1",
    "status": {"state": "submitted"},
    "kind": "task",
}
WORKING: dict[str, Any] = {
    "taskId": "t1",
    "contextId": "c1",
    "status": {"state": "working"},
    "final": False,
    "kind": "status-update",
}

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, headers: dict[str, str] | None = None) -> A2AClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return A2AClient(http, URL, headers=headers)


def events(*bodies: Any) -> bytes:
    return b"".join(b"data: " + orjson.dumps(body) + b"\r\n\r\n" for body in bodies)


def result(value: Any, request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": value}


async def test_stream_yields_each_events_data_and_skips_the_rest() -> None:
    body = (
        ": keep-alive\n\n"
        "retry: 1000\n\n"
        "id: 1-0\n\n"
        "id: 2-0\n"
        "event: message\n"
        'data: {"jsonrpc": "2.0", "id": 1,\n'
        'data:"result": "two lines"}\n'
        "retry: 1000\n\n"
        # Only CR and LF end a line: U+2028 (which orjson leaves unescaped) does not.
        'data: {"jsonrpc": "2.0", "id": 1, "result": "a\u2028b"}\r\n\r\n'
        'data: {"jsonrpc": "2.0", "id": 1, "result": "unterminated"}\n'
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=body.encode(), headers={"content-type": "text/event-stream"}
        )

    results = [item async for item in client(handler).stream("message/stream", {})]
    assert results == ["two lines", "a\u2028b"]


def test_endpoint_url_is_the_url_or_this_gateways_agent_path() -> None:
    assert endpoint_url("http://h:8000/") == "http://h:8000/"
    assert endpoint_url("http://h:8000/", "echo") == "http://h:8000/agents/echo"
    assert endpoint_url("http://h:8000", "a b/c") == "http://h:8000/agents/a%20b%2Fc"


def test_card_urls_look_beside_the_endpoint_then_at_the_root() -> None:
    assert card_urls("http://h/") == ["http://h/.well-known/agent.json"]
    assert card_urls("http://h/agents/echo") == [
        "http://h/agents/echo/.well-known/agent.json",
        "http://h/.well-known/agent.json",
    ]


async def test_call_posts_json_rpc_with_credentials_and_returns_the_result() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=result(TASK, orjson.loads(request.content)["id"]))

    rpc = client(handler, {"X-API-Key": "k1", "Authorization": "Bearer t1"})
    assert await rpc.call("tasks/get", {"id": "t1"}) == TASK
    assert await rpc.call("tasks/get", {"id": "t1"}) == TASK
    assert [orjson.loads(request.content) for request in seen] == [
        {"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": "t1"}},
        {"jsonrpc": "2.0", "id": 2, "method": "tasks/get", "params": {"id": "t1"}},
    ]
    assert seen[0].headers["x-api-key"] == "k1"
    assert seen[0].headers["authorization"] == "Bearer t1"


async def test_call_raises_the_json_rpc_error_with_its_http_status() -> None:
    error = {"code": -32010, "message": "Authentication required", "data": {"why": "no key"}}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"jsonrpc": "2.0", "id": None, "error": error})

    with pytest.raises(RpcError) as raised:
        await client(handler).call("tasks/get", {"id": "t1"})
    assert str(raised.value) == "error -32010: Authentication required"
    assert (raised.value.code, raised.value.data, raised.value.status) == (
        -32010,
        {"why": "no key"},
        401,
    )


async def test_call_reports_an_http_error_without_json_rpc_body() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="upstream down\n")

    with pytest.raises(TransportError) as raised:
        await client(handler).call("tasks/get", {"id": "t1"})
    assert str(raised.value) == "HTTP 502 Bad Gateway from http://a2a.test/: upstream down"


async def test_call_reports_a_200_that_is_not_json_rpc() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>hi</html>")

    with pytest.raises(TransportError) as raised:
        await client(handler).call("tasks/get", {"id": "t1"})
    assert str(raised.value) == "not a JSON-RPC response from http://a2a.test/: <html>hi</html>"


async def test_stream_yields_each_events_result_and_raises_an_error_event() -> None:
    error = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": "Internal error"}}

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["accept"] == "text/event-stream"
        assert request.headers["x-api-key"] == "k1"
        body = b": ping\r\n\r\n" + events(result(TASK), result(WORKING), error)
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    seen = []

    async def read() -> None:
        async for item in client(handler, {"X-API-Key": "k1"}).stream("message/stream", {}):
            seen.append(item)

    with pytest.raises(RpcError) as raised:
        await read()
    assert seen == [TASK, WORKING]
    assert str(raised.value) == "error -32603: Internal error"


async def test_stream_answered_with_plain_json_raises_its_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        error = {"code": -32602, "message": "Invalid parameters", "data": [{"field": "message"}]}
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": 1, "error": error})

    with pytest.raises(RpcError) as raised:
        async for _ in client(handler).stream("message/stream", {}):
            pass
    assert (raised.value.code, raised.value.data) == (-32602, [{"field": "message"}])


async def test_stream_answered_with_a_plain_result_yields_it() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=result(TASK))

    assert [item async for item in client(handler).stream("message/stream", {})] == [TASK]


async def test_agent_card_falls_back_to_the_root_and_is_none_without_one() -> None:
    card = {"name": "Echo", "capabilities": {"streaming": True}}
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        if request.url.path == "/.well-known/agent.json":
            return httpx.Response(200, json=card)
        return httpx.Response(404, text="Not Found")

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    assert await A2AClient(http, "http://a2a.test/agents/x").agent_card() == card
    assert asked == [
        "http://a2a.test/agents/x/.well-known/agent.json",
        "http://a2a.test/.well-known/agent.json",
    ]

    def nothing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404)

    assert await client(nothing).agent_card() is None


async def test_unreachable_server_is_a_transport_error_naming_the_url_and_reason() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        refused = ConnectionRefusedError(111, "Connect call failed ('10.0.0.1', 80)")
        raise httpx.ConnectError("All connection attempts failed") from refused

    with pytest.raises(TransportError) as raised:
        await client(handler).call("tasks/get", {"id": "t1"})
    assert str(raised.value) == "cannot connect to http://a2a.test/: Connection refused"


def test_describe_prefers_the_errno_of_the_deepest_os_error() -> None:
    refused = httpx.ConnectError("All connection attempts failed")
    refused.__cause__ = OSError("All connection attempts failed")
    refused.__cause__.__cause__ = ConnectionRefusedError(111, "Connect call failed ('::1', 1)")
    assert describe(refused) == "Connection refused"
    unresolved = httpx.ConnectError("[Errno -2] Name or service not known")
    unresolved.__cause__ = OSError(-2, "Name or service not known")
    assert describe(unresolved) == "Name or service not known"
    assert describe(httpx.ReadTimeout("")) == "ReadTimeout"


def test_check_url_takes_http_and_https_urls() -> None:
    for url in ("http://127.0.0.1:8000/", "https://a2a.test/agents/echo", "http://[::1]:8000/"):
        check_url(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://[::1", "Invalid IPv6 URL"),
        ("http://localhost:99999/", "port 99999 is not in 1-65535"),
        ("http://h:abc/", "Invalid port: 'abc'"),
        ("ftp://x", "the scheme must be http or https"),
        ("localhost:8000", "the scheme must be http or https"),
        ("http://", "it names no host"),
    ],
)
def test_check_url_says_what_is_wrong_with_a_url_no_request_can_go_to(
    url: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)) as raised:
        check_url(url)
    assert str(raised.value) == reason


async def test_calls_wait_30_s_a_blocking_send_600_s_and_a_stream_as_long_as_it_runs() -> None:
    waits: list[tuple[str, float | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        timeout = request.extensions["timeout"]
        assert (timeout["connect"], timeout["write"], timeout["pool"]) == (10.0, 10.0, 10.0)
        if request.method == "GET":
            waits.append(("card", timeout["read"]))
            return httpx.Response(404)
        body = orjson.loads(request.content)
        waits.append((body["method"], timeout["read"]))
        return httpx.Response(200, json=result(TASK, body["id"]))

    rpc = client(handler)
    assert await rpc.agent_card() is None
    await rpc.call("tasks/get", {"id": "t1"})
    await rpc.call("tasks/cancel", {"id": "t1"})
    await rpc.call("message/send", {"message": {}, "configuration": {"blocking": True}})
    await rpc.call("message/send", {"message": {}, "configuration": {"blocking": False}})
    assert [item async for item in rpc.stream("message/stream", {"message": {}})] == [TASK]
    assert waits == [
        ("card", 30.0),
        ("tasks/get", 30.0),
        ("tasks/cancel", 30.0),
        ("message/send", 600.0),
        ("message/send", 30.0),
        ("message/stream", None),
    ]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (httpx.ReadTimeout, "no answer from http://a2a.test/ within 30 s"),
        (httpx.ConnectTimeout, "cannot connect to http://a2a.test/: no answer within 10 s"),
    ],
)
async def test_a_call_not_answered_in_time_is_a_transport_error_naming_the_url(
    error: type[httpx.TimeoutException], message: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error("timed out", request=request)

    with pytest.raises(TransportError) as raised:
        await client(handler).call("tasks/get", {"id": "t1"})
    assert str(raised.value) == message


async def test_an_agent_card_not_answered_in_time_is_a_transport_error_not_a_missing_card() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    rpc = A2AClient(http, URL, call_timeout=httpx.Timeout(1.0, read=0.25))
    with pytest.raises(TransportError) as raised:
        await rpc.agent_card()
    assert (
        str(raised.value) == "no answer from http://a2a.test/.well-known/agent.json within 0.25 s"
    )


# ---- A2A 1.0: the converter, and `send` choosing its version from the agent card ----------------

REPLY: dict[str, Any] = {
    "artifactId": "a1",
    "name": "reply",
    "parts": [{"kind": "text", "text": "hello world"}],
}
QUESTION = {
    "role": "agent",
    "parts": [{"kind": "text", "text": "More?"}, {"kind": "data", "data": {"step": 2}}],
    "messageId": "m2",
    "taskId": "t1",
    "contextId": "c1",
    "kind": "message",
}
RICH_TASK: dict[str, Any] = {
    "id": "t1",
    "contextId": "c1",
    "status": {
        "state": "input-required",
        "message": QUESTION,
        "timestamp": "2025-06-01T12:00:03.120Z",
    },
    "history": [
        {
            "role": "user",
            "parts": [
                {"kind": "text", "text": "hi", "metadata": {"lang": "en"}},
                {
                    "kind": "file",
                    "file": {"bytes": "aGk=", "name": "hi.txt", "mimeType": "text/plain"},
                },
                {"kind": "file", "file": {"uri": "https://files.test/a.png"}},
            ],
            "messageId": "m1",
            "kind": "message",
        },
        QUESTION,
    ],
    "artifacts": [REPLY],
    "metadata": {"agent": "echo"},
    "kind": "task",
}
V1_CARD: dict[str, Any] = {
    "name": "Echo",
    "supportedInterfaces": [
        {"url": URL, "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"},
        {"url": URL, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
    ],
    "capabilities": {"streaming": True},
}
V025_CARD: dict[str, Any] = {"name": "Echo", "url": URL, "capabilities": {"streaming": True}}


def test_a_1_0_task_becomes_the_0_2_5_task_it_was_made_from() -> None:
    v1_task = task_to_v1(RICH_TASK)
    assert_valid_v1(v1_task, "Task")
    assert task_from_v1(v1_task) == RICH_TASK
    assert_valid(task_from_v1(v1_task), "Task")


def test_the_converter_renames_states_roles_and_parts_and_keeps_the_rest() -> None:
    v1_task = {
        "id": "t1",
        "contextId": "c1",
        "status": {"state": "TASK_STATE_UNSPECIFIED"},
        "history": [
            {"role": "ROLE_USER", "parts": [{"url": "u", "mediaType": "image/png"}, {"x": 1}]}
        ],
        "extra": True,
    }
    assert task_from_v1(v1_task) == {
        "id": "t1",
        "contextId": "c1",
        "status": {"state": "unknown"},
        "history": [
            {
                "role": "user",
                "parts": [
                    {"kind": "file", "file": {"uri": "u", "mimeType": "image/png"}},
                    {"x": 1},
                ],
                "kind": "message",
            }
        ],
        "extra": True,
        "kind": "task",
    }
    # What `display.unreadable` must see as it came: a status that is not an object, a foreign state.
    assert task_from_v1({"id": "t1", "status": "done"})["status"] == "done"
    assert state_from_v1("TASK_STATE_INPUT_REQUIRED") == "input-required"
    assert state_from_v1("paused") == "paused"


def test_stream_events_and_results_become_0_2_5_events() -> None:
    working = status_update_to_v1("t1", "c1", {"state": "working"})
    done = status_update_to_v1("t1", "c1", {"state": "completed", "message": QUESTION})
    chunk = artifact_update_to_v1(
        {"taskId": "t1", "contextId": "c1", "artifact": REPLY, "append": True}
    )
    assert [result_from_v1(event) for event in (working, done, chunk)] == [
        {**WORKING, "final": False},
        {"taskId": "t1", "contextId": "c1", "status": {"state": "completed", "message": QUESTION},
         "final": True, "kind": "status-update"},
        {"taskId": "t1", "contextId": "c1", "artifact": REPLY, "append": True, "lastChunk": False,
         "kind": "artifact-update"},
    ]  # fmt: skip
    assert result_from_v1({"task": task_to_v1(TASK)}) == TASK
    assert result_from_v1({"message": {"role": "ROLE_AGENT", "parts": [{"text": "hi"}]}}) == {
        "role": "agent",
        "parts": [{"kind": "text", "text": "hi"}],
        "kind": "message",
    }
    assert result_from_v1({"somethingElse": {}}) is None
    assert result_from_v1([1]) == [1]


def test_send_params_become_a_1_0_send_message_request() -> None:
    params = {
        "message": {
            "role": "user",
            "parts": [{"kind": "text", "text": "hi"}],
            "messageId": "m1",
            "contextId": "c1",
            "metadata": {"echo": {}},
            "kind": "message",
        },
        "configuration": {"acceptedOutputModes": ["text/plain"], "blocking": True},
    }
    request = params_to_v1("message/send", params)
    assert request == {
        "message": {
            "role": "ROLE_USER",
            "parts": [{"text": "hi"}],
            "messageId": "m1",
            "contextId": "c1",
            "metadata": {"echo": {}},
        },
        "configuration": {"acceptedOutputModes": ["text/plain"], "returnImmediately": False},
    }
    assert_valid_v1(request, "SendMessageRequest")
    assert params_to_v1("tasks/get", {"id": "t1", "historyLength": 0}) == {
        "id": "t1",
        "historyLength": 0,
    }


def test_a_card_speaks_1_0_when_it_lists_a_json_rpc_1_0_interface() -> None:
    assert speaks_v1(V1_CARD)
    only_rest = {"supportedInterfaces": V1_CARD["supportedInterfaces"][:1]}
    v03 = {"supportedInterfaces": [{"protocolBinding": "JSONRPC", "protocolVersion": "0.3"}]}
    for card in (None, V025_CARD, only_rest, v03, {"supportedInterfaces": "JSONRPC"}):
        assert not speaks_v1(card)
    patch = {"supportedInterfaces": [{"protocolBinding": "JSONRPC", "protocolVersion": "1.0.2"}]}
    assert speaks_v1(patch)


def test_a_state_filter_takes_0_2_5_and_1_0_names() -> None:
    for name in (
        "input-required",
        "INPUT_REQUIRED",
        "TASK_STATE_INPUT_REQUIRED",
        " input_required",
    ):
        assert state_filter(name) == "TASK_STATE_INPUT_REQUIRED"


@dataclass
class Seen:
    """A request a scripted server got: GET path, or the JSON-RPC method, and its A2A-Version."""

    what: str
    version: str | None
    params: Any = None


def server(*, v1: bool, log: list[Seen]) -> Handler:
    """A server that answers one turn of the echo agent ("hello world"), speaking 1.0 (`v1`) or 0.2.5
    only (no agent-card.json)."""
    final: dict[str, Any] = {**TASK, "status": {"state": "completed"}, "artifacts": [REPLY]}
    turn: list[Any] = [
        TASK,
        WORKING,
        {"taskId": "t1", "contextId": "c1", "artifact": REPLY, "kind": "artifact-update"},
        {"taskId": "t1", "contextId": "c1", "status": final["status"], "final": True,
         "kind": "status-update"},
    ]  # fmt: skip
    if v1:
        turn = [
            {"task": task_to_v1(TASK)},
            status_update_to_v1("t1", "c1", WORKING["status"]),
            artifact_update_to_v1({**turn[2], "append": False}),
            status_update_to_v1("t1", "c1", final["status"]),
        ]
    answers = {"SendMessage": {"task": task_to_v1(final)}, "message/send": final}
    answers |= {"GetTask": task_to_v1(final), "tasks/get": final}
    cards: dict[str, Any] = {"/.well-known/agent-card.json": V1_CARD} if v1 else {}
    cards["/.well-known/agent.json"] = V025_CARD

    def handler(request: httpx.Request) -> httpx.Response:
        version = request.headers.get("a2a-version")
        if request.method == "GET":
            log.append(Seen(request.url.path, version))
            card = cards.get(request.url.path)
            return httpx.Response(200, json=card) if card else httpx.Response(404)
        body = orjson.loads(request.content)
        log.append(Seen(body["method"], version, body["params"]))
        if body["method"] in ("SendStreamingMessage", "message/stream"):
            sse = events(*[result(event, body["id"]) for event in turn])
            return httpx.Response(200, content=sse, headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json=result(answers[body["method"]], body["id"]))

    return handler


def run_cli(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    handler: Handler,
    *argv: str,
) -> tuple[int, list[str], str]:
    """`a2a-gateway <argv> --url URL` against `handler`: its exit code, stdout lines and stderr."""
    real = httpx.AsyncClient
    monkeypatch.setattr(
        httpx, "AsyncClient", functools.partial(real, transport=httpx.MockTransport(handler))
    )
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # the CLI's SIGPIPE: not pytest's
    args = build_parser().parse_args([*argv, "--url", URL])
    code = args.run(args)
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


TURN = ["task t1 (context c1)", "submitted", "working", "hello world", "completed"]


def test_send_speaks_1_0_when_the_card_offers_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log: list[Seen] = []
    assert run_cli(monkeypatch, capsys, server(v1=True, log=log), "send", "hi") == (0, TURN, "")
    assert [(seen.what, seen.version) for seen in log] == [
        ("/.well-known/agent-card.json", None),
        ("SendStreamingMessage", "1.0"),
    ]
    assert_valid_v1(log[1].params, "SendMessageRequest")
    assert log[1].params["message"]["role"] == "ROLE_USER"
    assert log[1].params["message"]["parts"] == [{"text": "hi"}]

    log.clear()
    code, lines, err = run_cli(
        monkeypatch, capsys, server(v1=True, log=log), "send", "--no-stream", "hi"
    )
    assert (code, lines, err) == (0, [TURN[0], "hello world", "completed"], "")
    assert [(seen.what, seen.version) for seen in log][1:] == [("SendMessage", "1.0")]
    assert log[1].params["configuration"] == {
        "acceptedOutputModes": ["text/plain", "application/json"],
        "returnImmediately": False,
    }


def test_send_json_prints_the_0_2_5_task_whichever_version_the_server_speaks(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    printed = []
    for v1 in (True, False):
        log: list[Seen] = []
        code, lines, err = run_cli(
            monkeypatch, capsys, server(v1=v1, log=log), "send", "--json", "hi"
        )
        assert (code, err) == (0, "")
        printed.append(orjson.loads("\n".join(lines)))
        assert log[-1].what == ("GetTask" if v1 else "tasks/get")
    assert printed[0] == printed[1]
    assert_valid(printed[0], "Task")


def test_send_falls_back_to_0_2_5_when_there_is_no_1_0_card(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log: list[Seen] = []
    assert run_cli(monkeypatch, capsys, server(v1=False, log=log), "send", "hi") == (0, TURN, "")
    assert [(seen.what, seen.version) for seen in log] == [
        ("/.well-known/agent-card.json", None),
        ("/.well-known/agent.json", None),
        ("message/stream", None),
    ]
    assert log[2].params["message"]["parts"] == [{"kind": "text", "text": "hi"}]


def test_an_unreadable_1_0_answer_names_the_1_0_method(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=V1_CARD)
        task = {"id": 5, "contextId": "c1", "status": {"state": "TASK_STATE_COMPLETED"}}
        return httpx.Response(200, json=result({"task": task}))

    code, lines, err = run_cli(monkeypatch, capsys, handler, "send", "--no-stream", "hi")
    assert (code, lines) == (3, [])
    assert (
        err
        == f"not an A2A answer from {URL}: SendMessage returned a task whose id is 5, not a string\n"
    )


async def test_a_1_0_send_message_waits_600_s_unless_it_returns_immediately() -> None:
    waits: list[float | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        waits.append(request.extensions["timeout"]["read"])
        return httpx.Response(200, json=result({"task": task_to_v1(TASK)}))

    rpc = client(handler)
    await rpc.call("SendMessage", {"message": {}})
    await rpc.call("SendMessage", {"message": {}, "configuration": {"returnImmediately": False}})
    await rpc.call("SendMessage", {"message": {}, "configuration": {"returnImmediately": True}})
    await rpc.call("ListTasks", {})
    assert waits == [600.0, 600.0, 30.0, 30.0]
