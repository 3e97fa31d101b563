"""The CLI's A2A client: reading SSE events, URL checks, endpoint and card URLs, how long each call waits,
and what each kind of answer becomes (results, JSON-RPC errors, transport errors, timeouts), over
httpx's MockTransport."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from gateway.client.rpc import (
    A2AClient,
    RpcError,
    TransportError,
    card_urls,
    check_url,
    describe,
    endpoint_url,
)

URL = "http://a2a.test/"
TASK = {"id": "t1", "contextId": "c1", "status": {"state": "submitted"}, "kind": "task"}
WORKING = {
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
