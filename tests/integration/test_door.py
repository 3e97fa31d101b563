"""The door (issue 17): what a request may carry and how it must come, checked before anything of it
reaches Temporal or Redis, through the real stack (the app or a gateway process, Temporal, the echo
worker, Redis). Input limits named in a -32602 in every protocol version and on `/ws`; out-of-range
event ids; a client gone mid-body; non-POST methods and non-JSON bodies on JSON-RPC paths; and another
tenant's task answered by the very path of a task that does not exist."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect

from gateway.settings import GatewaySettings
from protocol.keys import message_task_key
from tests.a2a_schema import assert_valid_response
from tests.a2a_v1_schema import assert_valid_v1
from tests.conftest import app_client
from tests.integration.agents_files import echo_behind_api_keys
from tests.integration.conftest import LaunchGateway
from tests.integration.sse import GatewayProcess, echo_message, rpc_body
from tests.integration.test_tasks import stamped
from tests.integration.test_tracing import spans
from tests.waiting import eventually

__all__ = ["spans"]

ALICE_KEY = "door-alice-key-4e1b7a"
BOB_KEY = "door-bob-key-90c3f2"
ALICE = {"X-API-Key": ALICE_KEY}
BOB = {"X-API-Key": BOB_KEY}
V1_HEADERS = {"A2A-Version": "1.0"}
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
TOO_BIG_EVENT_ID = "1-18446744073709551616"
LAST_EVENT_ID = "18446744073709551615-18446744073709551615"
NOT_JSON = (
    "Request payload validation error: Content-Type {!r} is not JSON; "
    "send application/json or application/a2a+json"
)


def nested(levels: int) -> Any:
    """An object `levels` levels deep."""
    value: Any = {}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


def deep_json(body: Any) -> bytes:
    """`body` as JSON, however deep (orjson writes no more than 254 levels)."""
    return json.dumps(body).encode()


def user_message(**fields: Any) -> dict[str, Any]:
    return {**echo_message("hi"), **fields}


def v1_message(**fields: Any) -> dict[str, Any]:
    return {
        "role": "ROLE_USER",
        "parts": [{"text": "hi"}],
        "messageId": str(uuid.uuid4()),
        **fields,
    }


def over_limit(
    request_id: Any, method: str, field: str, problem: str, more: int = 0
) -> dict[str, Any]:
    """The -32602 of a 0.2.5 or 0.3 request with `field` over its limit."""
    tail = f" (and {more} more)" if more else ""
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "error": {
            "code": -32602,
            "message": f"Invalid parameters for {method}: {field}: {problem}{tail}",
            "data": [{"field": field, "message": problem}],
        },
    }


def v1_over_limit(request_id: Any, method: str, field: str, problem: str) -> dict[str, Any]:
    """The -32602 of a 1.0 JSON-RPC request: the field in a google.rpc.BadRequest."""
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "error": {
            "code": -32602,
            "message": f"Invalid parameters for {method}: {field}: {problem}",
            "data": [
                {
                    "@type": BAD_REQUEST,
                    "fieldViolations": [{"field": field, "description": problem}],
                }
            ],
        },
    }


def rest_over_limit(method: str, field: str, problem: str) -> dict[str, Any]:
    """The same over HTTP+JSON: a google.rpc.Status (HTTP 400)."""
    return {
        "error": {
            "code": 400,
            "status": "INVALID_ARGUMENT",
            "message": f"Invalid parameters for {method}: {field}: {problem}",
            "details": [
                {
                    "@type": BAD_REQUEST,
                    "fieldViolations": [{"field": field, "description": problem}],
                }
            ],
        }
    }


def refusal(code: int, message: str) -> dict[str, Any]:
    """A JSON-RPC error answered before the body was read: its id is unknown."""
    return {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}


def answer(response: httpx.Response, method: str | None = None) -> dict[str, Any]:
    """The JSON-RPC response of an HTTP 200 application/json answer, checked against the schema."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert_valid_response(body, method)
    return body


async def post_rpc(
    http: httpx.AsyncClient,
    body: Any,
    headers: dict[str, str] | None = None,
    url: str = "/",
) -> httpx.Response:
    content = body if isinstance(body, bytes) else deep_json(body)
    return await http.post(
        url, content=content, headers={"content-type": "application/json", **(headers or {})}
    )


# --- Fixtures: a gateway with auth (API keys for alice and bob) on the session's echo queue --------


@pytest.fixture(scope="module")
def agents_file(tmp_path_factory: pytest.TempPathFactory, task_queue: str) -> Path:
    path = tmp_path_factory.mktemp("door") / "agents.toml"
    path.write_text(echo_behind_api_keys(task_queue, {"alice": ALICE_KEY, "bob": BOB_KEY}))
    return path


@pytest.fixture(scope="module")
async def auth_http(
    gateway_settings: GatewaySettings, agents_file: Path, echo_worker: None
) -> AsyncIterator[httpx.AsyncClient]:
    settings = gateway_settings.model_copy(update={"config": agents_file})
    async with app_client(settings) as client:
        yield client


@pytest.fixture(scope="module")
def auth_gateway(
    launch_gateway: LaunchGateway, agents_file: Path, echo_worker: None
) -> Iterator[GatewayProcess]:
    with launch_gateway("door", {"A2A_CONFIG": str(agents_file)}) as gateway:
        yield gateway


# --- 1. Input limits, named in the error, in every version -----------------------------------------


DEEP_DATA = [{"kind": "data", "data": nested(195)}]
MANY_PARTS = [{"kind": "text", "text": "x"}] * 1001

# (name, method, params, headers, field, problem): JSON-RPC requests over a limit.
RPC_CASES: list[tuple[str, str, dict[str, Any], dict[str, str], str, str]] = [
    (
        "0.2.5-message-metadata-65",
        "message/send",
        {"message": user_message(metadata=nested(65))},
        {},
        "message.metadata",
        "nested deeper than 64 levels",
    ),
    (
        "0.2.5-params-metadata-300",
        "message/send",
        {"message": user_message(), "metadata": nested(300)},
        {},
        "metadata",
        "nested deeper than 64 levels",
    ),
    (
        "0.2.5-data-part-195",
        "message/stream",
        {"message": user_message(parts=DEEP_DATA)},
        {},
        "message.parts.0.data",
        "nested deeper than 64 levels",
    ),
    (
        "0.2.5-part-metadata-65",
        "message/send",
        {"message": user_message(parts=[{"kind": "text", "text": "a", "metadata": nested(65)}])},
        {},
        "message.parts.0.metadata",
        "nested deeper than 64 levels",
    ),
    (
        "0.2.5-context-id-100000",
        "message/send",
        {"message": user_message(contextId="c" * 100_000)},
        {},
        "message.contextId",
        "longer than 1024 characters (100000)",
    ),
    (
        "0.2.5-context-id-non-ascii",
        "message/send",
        {"message": user_message(contextId="é" * 400)},
        {},
        "message.contextId",
        "over 2048 bytes as JSON (2402; a non-ASCII character takes 6 or 12), more than "
        "Temporal indexes",
    ),
    (
        "0.2.5-1001-parts",
        "message/send",
        {"message": user_message(parts=MANY_PARTS)},
        {},
        "message.parts",
        "more than 1000 parts (1001)",
    ),
    (
        "0.2.5-reference-task-id",
        "message/send",
        {"message": user_message(referenceTaskIds=["r" * 1025])},
        {},
        "message.referenceTaskIds.0",
        "longer than 1024 characters (1025)",
    ),
    (
        "0.2.5-task-id-in-get",
        "tasks/get",
        {"id": "t" * 2000},
        {},
        "id",
        "longer than 1024 characters (2000)",
    ),
    (
        "0.2.5-cancel-metadata",
        "tasks/cancel",
        {"id": "t", "metadata": nested(65)},
        {},
        "metadata",
        "nested deeper than 64 levels",
    ),
    (
        "0.2.5-push-config-id",
        "tasks/pushNotificationConfig/set",
        {"taskId": "t", "pushNotificationConfig": {"url": "https://x.test", "id": "p" * 1025}},
        {},
        "pushNotificationConfig.id",
        "longer than 1024 characters (1025)",
    ),
    (
        "0.3-message-id",
        "message/send",
        {"message": user_message(messageId="m" * 1025)},
        {"A2A-Version": "0.3"},
        "message.messageId",
        "longer than 1024 characters (1025)",
    ),
    (
        "0.3-follow-up-task-id",
        "message/stream",
        {"message": user_message(taskId="t" * 1025)},
        {"A2A-Version": "0.3"},
        "message.taskId",
        "longer than 1024 characters (1025)",
    ),
]

V1_CASES: list[tuple[str, str, dict[str, Any], str, str]] = [
    (
        "message-metadata-200",
        "SendMessage",
        {"message": v1_message(metadata=nested(200))},
        "message.metadata",
        "nested deeper than 64 levels",
    ),
    (
        "data-part-65",
        "SendStreamingMessage",
        {"message": v1_message(parts=[{"data": nested(65)}])},
        "message.parts.0.data",
        "nested deeper than 64 levels",
    ),
    (
        "context-id-100000",
        "SendMessage",
        {"message": v1_message(contextId="c" * 100_000)},
        "message.contextId",
        "longer than 1024 characters (100000)",
    ),
    ("task-id", "GetTask", {"id": "t" * 1025}, "id", "longer than 1024 characters (1025)"),
    (
        "push-config-id",
        "CreateTaskPushNotificationConfig",
        {"taskId": "t", "url": "https://x.test", "id": "p" * 1025},
        "id",
        "longer than 1024 characters (1025)",
    ),
    (
        "list-context-id",
        "ListTasks",
        {"contextId": "c" * 1025},
        "contextId",
        "longer than 1024 characters (1025)",
    ),
]


@pytest.mark.parametrize(
    ("method", "params", "headers", "field", "problem"),
    [case[1:] for case in RPC_CASES],
    ids=[case[0] for case in RPC_CASES],
)
async def test_json_rpc_request_over_a_limit_is_32602_naming_field_and_limit(
    http: httpx.AsyncClient,
    method: str,
    params: dict[str, Any],
    headers: dict[str, str],
    field: str,
    problem: str,
) -> None:
    response = await post_rpc(http, rpc_body(method, params, "r"), headers)
    assert answer(response) == over_limit("r", method, field, problem)


@pytest.mark.parametrize(
    ("method", "params", "field", "problem"),
    [case[1:] for case in V1_CASES],
    ids=[case[0] for case in V1_CASES],
)
async def test_1_0_json_rpc_request_over_a_limit_is_32602_with_a_bad_request(
    http: httpx.AsyncClient, method: str, params: dict[str, Any], field: str, problem: str
) -> None:
    response = await post_rpc(http, rpc_body(method, params, 7), V1_HEADERS)
    assert response.status_code == 200
    assert response.json() == v1_over_limit(7, method, field, problem)


async def test_http_json_request_over_a_limit_is_400_with_a_bad_request(
    http: httpx.AsyncClient,
) -> None:
    headers = {"content-type": "application/a2a+json"}
    deep = await http.post(
        "/rest/message:send",
        content=deep_json({"message": v1_message(metadata=nested(300))}),
        headers=headers,
    )
    long_context = await http.post(
        "/rest/message:stream",
        content=deep_json({"message": v1_message(contextId="c" * 100_000)}),
        headers=headers,
    )
    many_parts = await http.post(
        "/rest/message:send",
        content=deep_json({"message": v1_message(parts=[{"text": "x"}] * 1001)}),
        headers=headers,
    )
    long_id = await http.get(f"/rest/tasks/{'t' * 1025}")
    long_push_id = await http.get(f"/rest/tasks/t/pushNotificationConfigs/{'p' * 1025}")
    answers = [deep, long_context, many_parts, long_id, long_push_id]
    assert [(r.status_code, r.headers["content-type"]) for r in answers] == [
        (400, "application/a2a+json")
    ] * 5
    assert [r.json() for r in answers] == [
        rest_over_limit("SendMessage", "message.metadata", "nested deeper than 64 levels"),
        rest_over_limit(
            "SendStreamingMessage", "message.contextId", "longer than 1024 characters (100000)"
        ),
        rest_over_limit("SendMessage", "message.parts", "more than 1000 parts (1001)"),
        rest_over_limit("GetTask", "id", "longer than 1024 characters (1025)"),
        rest_over_limit(
            "GetTaskPushNotificationConfig", "id", "longer than 1024 characters (1025)"
        ),
    ]


async def test_several_fields_over_their_limits_are_each_named(http: httpx.AsyncClient) -> None:
    params = {
        "message": user_message(contextId="c" * 1025, metadata=nested(65)),
        "metadata": nested(65),
    }
    response = await post_rpc(http, rpc_body("message/send", params, 3))
    problems = [
        ("message.contextId", "longer than 1024 characters (1025)"),
        ("metadata", "nested deeper than 64 levels"),
        ("message.metadata", "nested deeper than 64 levels"),
    ]
    assert answer(response) == {
        "jsonrpc": "2.0",
        "id": 3,
        "error": {
            "code": -32602,
            "message": "Invalid parameters for message/send: message.contextId: longer than "
            "1024 characters (1025) (and 2 more)",
            "data": [{"field": field, "message": problem} for field, problem in problems],
        },
    }


async def test_json_nested_deeper_than_the_parser_reads_is_a_parse_error(
    http: httpx.AsyncClient,
) -> None:
    """10,000 levels: orjson stops at 1,024, and says so (-32700, never -32603)."""
    deep = b'{"k":' * 10_000 + b"{}" + b"}" * 10_000
    message = (
        b'{"role":"user","parts":[{"kind":"text","text":"hi"}],"messageId":"m","metadata":'
        + deep
        + b"}"
    )
    body = b'{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":' + message + b"}}"
    response = await post_rpc(http, body)
    assert answer(response) == refusal(
        -32700,
        "Invalid JSON payload: nested deeper than 1024 levels "
        "(depth limit exceeded: line 1 column 5255 (char 5254))",
    )
    rest = await http.post(
        "/rest/message:send",
        content=b'{"message":' + message + b"}",
        headers={"content-type": "application/json"},
    )
    assert (rest.status_code, rest.json()) == (
        400,
        {
            "error": {
                "code": 400,
                "status": "INVALID_ARGUMENT",
                "message": "Invalid JSON payload: nested deeper than 1024 levels "
                "(depth limit exceeded: line 1 column 5203 (char 5202))",
                "details": [],
            }
        },
    )


def _trace_of(spans: list[ReadableSpan], server: ReadableSpan) -> list[str]:
    """The names of the spans of `server`'s trace other than itself."""
    return [
        span.name
        for span in spans
        if span.context.trace_id == server.context.trace_id and span is not server
    ]


async def test_requests_over_a_limit_reach_neither_temporal_nor_redis(
    spans: InMemorySpanExporter, gateway_settings: GatewaySettings, echo_worker: None
) -> None:
    """Each refused request is one span, the server's: no Redis command, no Temporal call below it."""
    async with app_client(gateway_settings) as http:
        for _, method, params, headers, _, _ in RPC_CASES:
            await post_rpc(http, rpc_body(method, params), headers)
        for _, method, params, _, _ in V1_CASES:
            await post_rpc(http, rpc_body(method, params), V1_HEADERS)
    finished = list(spans.get_finished_spans())
    servers = [span for span in finished if span.kind is trace.SpanKind.SERVER]
    assert [span.name for span in servers] == [case[1] for case in RPC_CASES] + [
        case[1] for case in V1_CASES
    ]
    assert [dict(span.attributes or {}).get("rpc.jsonrpc.error_code") for span in servers] == [
        -32602
    ] * len(servers)
    assert [_trace_of(finished, server) for server in servers] == [[]] * len(servers)


async def test_requests_at_the_limits_are_served_and_read_back_whole(
    http: httpx.AsyncClient,
) -> None:
    """64 levels of metadata and data, 1,000 parts, ids of 1,024 characters: a task that completes,
    whose `tasks/get` gives the message back as it was sent."""
    parts: list[dict[str, Any]] = [{"kind": "text", "text": f"{n} "} for n in range(998)]
    parts.append({"kind": "text", "text": "meta", "metadata": nested(64)})
    parts.append({"kind": "data", "data": nested(64)})
    message = {
        "role": "user",
        "parts": parts,
        "messageId": "m" * 1023 + str(uuid.uuid4())[0],
        "contextId": str(uuid.uuid4()) + "c" * (1024 - 36),
        "referenceTaskIds": ["r" * 1024],
        "metadata": nested(64),
    }
    sent = answer(
        await post_rpc(
            http, rpc_body("message/send", {"message": message, "metadata": nested(64)})
        ),
        "message/send",
    )
    task = sent["result"]
    assert stamped(task["status"]) == {"state": "completed"}
    assert task["contextId"] == message["contextId"]
    got = answer(await post_rpc(http, rpc_body("tasks/get", {"id": task["id"]})), "tasks/get")
    assert got["result"]["history"][0] == {
        **message,
        "taskId": task["id"],
        "kind": "message",
    }
    # A context id of non-ASCII characters that Temporal can still index: 341 * 6 + 2 = 2048 bytes.
    accented = answer(
        await post_rpc(
            http, rpc_body("message/send", {"message": user_message(contextId="é" * 341)})
        ),
        "message/send",
    )
    assert accented["result"]["contextId"] == "é" * 341
    assert accented["result"]["status"]["state"] == "completed"
    v1 = await post_rpc(
        http,
        rpc_body("SendMessage", {"message": v1_message(metadata=nested(64), contextId="x" * 1024)}),
        V1_HEADERS,
    )
    assert v1.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert_valid_v1(v1.json()["result"], "SendMessageResponse")


# --- 1b. /ws messages ------------------------------------------------------------------------------


def ws_url(gateway: GatewayProcess) -> str:
    return gateway.url.replace("http://", "ws://", 1) + "/ws"


async def ws_exchange(ws: ClientConnection, message: bytes | str) -> dict[str, Any]:
    await ws.send(message if isinstance(message, str) else message.decode())
    async with asyncio.timeout(15):
        frame = await ws.recv()
    assert isinstance(frame, str)
    received: dict[str, Any] = orjson.loads(frame)
    return received


def ws_error(task_id: str | None, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"type": "error", "taskId": task_id, "error": error}


async def test_ws_messages_over_a_limit_are_32602_and_the_socket_stays_usable(
    gateway_a: GatewayProcess,
) -> None:
    deep_ping = deep_json({"type": "ping", "data": nested(300)})
    long_task = deep_json({"type": "subscribe", "taskId": "t" * 1025})
    deep_subscribe = deep_json({"type": "subscribe", "taskId": "t", "after": nested(65)})
    too_deep = b'{"type":"ping","data":' + b"[" * 1030 + b"]" * 1030 + b"}"
    async with connect(ws_url(gateway_a)) as ws:
        assert await ws_exchange(ws, deep_ping) == ws_error(
            None,
            -32602,
            "Invalid parameters: data: nested deeper than 64 levels",
            [{"field": "data", "message": "nested deeper than 64 levels"}],
        )
        assert await ws_exchange(ws, long_task) == ws_error(
            None,
            -32602,
            "Invalid parameters: taskId: longer than 1024 characters (1025)",
            [{"field": "taskId", "message": "longer than 1024 characters (1025)"}],
        )
        assert await ws_exchange(ws, deep_subscribe) == ws_error(
            "t",
            -32602,
            "Invalid parameters: after: nested deeper than 64 levels",
            [{"field": "after", "message": "nested deeper than 64 levels"}],
        )
        assert await ws_exchange(ws, too_deep) == ws_error(
            None,
            -32700,
            "Invalid JSON payload: nested deeper than 1024 levels "
            "(depth limit exceeded: line 1 column 1047 (char 1046))",
        )
        at_limit = nested(64)
        assert await ws_exchange(ws, orjson.dumps({"type": "ping", "data": at_limit})) == {
            "type": "pong",
            "data": at_limit,
        }
        assert await ws_exchange(ws, orjson.dumps({"type": "ping", "data": 1})) == {
            "type": "pong",
            "data": 1,
        }
    assert "Traceback" not in gateway_a.output()


# --- 2. Event ids out of range ---------------------------------------------------------------------


def bad_event_id(value: str, why: str) -> str:
    return (
        f"Last-Event-ID must be an event id this gateway sent (like 1700000000000-0), got "
        f"{value!r}: {why}"
    )


OUT_OF_RANGE = bad_event_id(TOO_BIG_EVENT_ID, "each part is at most 18446744073709551615")
PAST_THE_END = bad_event_id(LAST_EVENT_ID, "no event can follow it")


async def test_event_ids_out_of_range_are_32602_on_every_stream(
    http: httpx.AsyncClient,
) -> None:
    start = rpc_body("message/send", {"message": echo_message("open", finalState="input-required")})
    task = answer(await post_rpc(http, start), "message/send")["result"]
    task_id = task["id"]
    for event_id, message in [(TOO_BIG_EVENT_ID, OUT_OF_RANGE), (LAST_EVENT_ID, PAST_THE_END)]:
        resume = {"last-event-id": event_id}
        resubscribe = await post_rpc(http, rpc_body("tasks/resubscribe", {"id": task_id}), resume)
        assert answer(resubscribe) == {
            "jsonrpc": "2.0",
            "id": 1,
            "error": {"code": -32602, "message": message},
        }
        follow_up = {"message": {**echo_message("again"), "taskId": task_id}}
        stream = await post_rpc(http, rpc_body("message/stream", follow_up, 2), resume)
        assert answer(stream) == {
            "jsonrpc": "2.0",
            "id": 2,
            "error": {"code": -32602, "message": message},
        }
        subscribe = await post_rpc(
            http, rpc_body("SubscribeToTask", {"id": task_id}, 3), {**resume, **V1_HEADERS}
        )
        assert (subscribe.status_code, subscribe.json()) == (
            200,
            {"jsonrpc": "2.0", "id": 3, "error": {"code": -32602, "message": message}},
        )
        rest = await http.get(f"/rest/tasks/{task_id}:subscribe", headers=resume)
        assert (rest.status_code, rest.json()) == (
            400,
            {
                "error": {
                    "code": 400,
                    "status": "INVALID_ARGUMENT",
                    "message": message,
                    "details": [],
                }
            },
        )
        browser = await http.get(f"/tasks/{task_id}/events", headers=resume)
        query = await http.get(f"/tasks/{task_id}/events", params={"lastEventId": event_id})
        for response in (browser, query):
            assert (response.status_code, response.json()) == (400, refusal(-32602, message))
    # The largest id that can still be followed is read: nothing came after it, and the task is
    # over (204: the browser stream's "stop").
    finish = rpc_body("message/send", {"message": echo_message("done")})
    done = answer(await post_rpc(http, finish), "message/send")
    last = await http.get(
        f"/tasks/{done['result']['id']}/events", headers={"last-event-id": "18446744073709551615-0"}
    )
    assert last.status_code == 204


async def test_ws_after_out_of_range_is_32602(gateway_a: GatewayProcess) -> None:
    async with connect(ws_url(gateway_a)) as ws:
        subscribe = orjson.dumps({"type": "subscribe", "taskId": "t", "after": TOO_BIG_EVENT_ID})
        assert await ws_exchange(ws, subscribe) == ws_error(
            "t",
            -32602,
            "Invalid parameters: after must be an event id this feed sent (like "
            f"1700000000000-0), got {TOO_BIG_EVENT_ID!r}",
        )


# --- 3. A client gone mid-body -------------------------------------------------------------------


async def scrape(http: httpx.AsyncClient, url: str) -> dict[tuple[str, str], float]:
    response = await http.get(f"{url}/metrics")
    return {
        (sample.labels["method"], sample.labels["code"]): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "a2a_requests_total"
    }


async def send_half_a_body(url: str, headers: dict[str, str]) -> None:
    """POST declaring 1,000 body bytes, send 10 of them, and hang up."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    _, writer = await asyncio.open_connection(parts.hostname, parts.port)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    writer.write(
        f"POST / HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: 1000\r\n{head}\r\n".encode()
        + b'{"jsonrpc"'
    )
    await writer.drain()
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def test_client_gone_mid_body_is_counted_apart_without_a_traceback(
    auth_gateway: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    before = await scrape(sse_client, auth_gateway.url)
    await send_half_a_body(auth_gateway.url, ALICE)
    await send_half_a_body(auth_gateway.url, BOB)

    async def counted() -> dict[tuple[str, str], float]:
        return await scrape(sse_client, auth_gateway.url)

    after = await eventually(
        counted,
        10,
        what="two requests counted client_disconnected",
        until=lambda now: now.get(("other", "client_disconnected"), 0) == 2,
    )
    grown = {key: value - before.get(key, 0) for key, value in after.items()}
    assert {key: value for key, value in grown.items() if value} == {
        ("other", "client_disconnected"): 2
    }
    log = auth_gateway.output()
    assert "Traceback" not in log
    assert " ERROR " not in log


# --- 4. and 5. How a request must come: POST, JSON ------------------------------------------------


def not_allowed(method: str) -> dict[str, Any]:
    return refusal(
        -32600,
        f"Request payload validation error: {method} is not allowed on a JSON-RPC endpoint; "
        "send the request with POST",
    )


async def test_non_post_on_json_rpc_paths_is_405_and_every_get_route_still_serves(
    http: httpx.AsyncClient,
) -> None:
    refused = [
        await http.get("/"),
        await http.put("/agents/echo/", content=b"{}"),
        await http.delete("/agents/echo"),
        await http.patch("/", content=b"{}"),
    ]
    assert [
        (r.status_code, r.headers["allow"], r.headers["content-type"], r.json()) for r in refused
    ] == [
        (405, "POST", "application/json", not_allowed(method))
        for method in ("GET", "PUT", "DELETE", "PATCH")
    ]
    start = rpc_body("message/send", {"message": echo_message("gets")})
    task = answer(await post_rpc(http, start), "message/send")["result"]
    served = {
        path: (await http.get(path)).status_code
        for path in [
            "/.well-known/agent.json",
            "/.well-known/agent-card.json",
            "/agents/echo/.well-known/agent.json",
            "/agents/echo/.well-known/agent-card.json",
            "/healthz",
            "/readyz",
            "/metrics",
            "/ui/",
            "/ui/config.json",
            f"/tasks/{task['id']}/events",
            f"/rest/tasks/{task['id']}",
            "/rest/tasks",
            f"/agents/echo/rest/tasks/{task['id']}",
        ]
    }
    assert served == dict.fromkeys(served, 200)


async def test_a_browser_at_the_root_is_sent_to_the_console_and_json_clients_get_405(
    http: httpx.AsyncClient,
) -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    sent = await http.get("/?x=1", headers={"Accept": browser})
    assert (sent.status_code, sent.headers["location"]) == (303, "/ui/")
    for accept in ("application/json", "*/*", "text/event-stream"):
        refused = await http.get("/", headers={"Accept": accept})
        assert (refused.status_code, refused.json()) == (405, not_allowed("GET")), accept
    # Only the root: an agent's endpoint, and other methods, keep their 405.
    assert (await http.get("/agents/echo", headers={"Accept": browser})).status_code == 405
    assert (await http.delete("/", headers={"Accept": browser})).status_code == 405


async def test_a_body_that_is_not_json_is_415_and_json_ones_are_served(
    http: httpx.AsyncClient,
) -> None:
    body = orjson.dumps(rpc_body("tasks/get", {"id": "nope"}))
    refused = {}
    for content_type in ("application/x-www-form-urlencoded", "text/plain", "text/json"):
        response = await http.post("/", content=body, headers={"content-type": content_type})
        refused[content_type] = (response.status_code, response.json())
    assert refused == {
        content_type: (415, refusal(-32600, NOT_JSON.format(content_type)))
        for content_type in refused
    }
    not_found = {
        "jsonrpc": "2.0",
        "id": 1,
        "error": {"code": -32001, "message": "Task not found: 'nope'"},
    }
    for headers in (
        {},
        {"content-type": "application/json"},
        {"content-type": "application/json; charset=utf-8"},
        {"content-type": "application/a2a+json"},
    ):
        response = await http.post("/", content=body, headers=headers)
        assert answer(response, "tasks/get") == not_found, headers
    rest = await http.post(
        "/rest/message:send",
        content=orjson.dumps({"message": v1_message()}),
        headers={"content-type": "text/plain"},
    )
    assert (rest.status_code, rest.headers["content-type"], rest.json()) == (
        415,
        "application/a2a+json",
        {
            "error": {
                "code": 415,
                "status": "INVALID_ARGUMENT",
                "message": NOT_JSON.format("text/plain"),
                "details": [],
            }
        },
    )
    # A GET carries no body: its Content-Type does not matter.
    listed = await http.get("/rest/tasks", headers={"content-type": "text/plain"})
    assert listed.status_code == 200
    served = await http.post("/rest/message:send", content=orjson.dumps({"message": v1_message()}))
    assert served.json()["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_the_credential_is_checked_before_the_content_type(
    auth_http: httpx.AsyncClient,
) -> None:
    body = orjson.dumps(rpc_body("tasks/get", {"id": "nope"}))
    form = {"content-type": "application/x-www-form-urlencoded"}
    stranger = await auth_http.post("/", content=body, headers=form)
    assert stranger.status_code == 401
    known = await auth_http.post("/", content=body, headers={**form, **ALICE})
    assert (known.status_code, known.json()) == (
        415,
        refusal(-32600, NOT_JSON.format("application/x-www-form-urlencoded")),
    )


# --- 6. No timing oracle -------------------------------------------------------------------------


def _path_of(spans: list[ReadableSpan], server: ReadableSpan) -> list[tuple[str, str]]:
    """What a request did: each client span below it (Redis commands, Temporal calls), as its kind of
    call and how it ended, in order."""
    below = sorted(
        (
            span
            for span in spans
            if span.context.trace_id == server.context.trace_id and span is not server
        ),
        key=lambda span: span.start_time or 0,
    )
    return [(span.name.partition(":")[0], span.status.status_code.name) for span in below]


async def test_another_tenants_task_and_a_missing_task_take_the_same_path(
    spans: InMemorySpanExporter,
    gateway_settings: GatewaySettings,
    agents_file: Path,
    echo_worker: None,
) -> None:
    """Bob asking for Alice's task and for a task that does not exist: the same answer after the same
    calls, one Redis read (the owner) and one Temporal query that finds no workflow."""
    settings = gateway_settings.model_copy(update={"config": agents_file})
    async with app_client(settings) as http:
        start = rpc_body("message/send", {"message": echo_message("alice's")})
        alices = answer(await post_rpc(http, start, ALICE), "message/send")["result"]["id"]
        missing = str(uuid.uuid4())
        spans.clear()
        answers = [
            answer(await post_rpc(http, rpc_body("tasks/get", {"id": task_id}), BOB))
            for task_id in (alices, missing)
        ]
    assert answers == [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "error": {"code": -32001, "message": f"Task not found: '{task_id}'"},
        }
        for task_id in (alices, missing)
    ]
    finished = list(spans.get_finished_spans())
    servers = [span for span in finished if span.kind is trace.SpanKind.SERVER]
    assert [span.name for span in servers] == ["tasks/get", "tasks/get"]
    paths = [_path_of(finished, server) for server in servers]
    assert paths == [[("GET", "UNSET"), ("QueryWorkflow", "ERROR")]] * 2


async def test_a_claimed_message_whose_task_never_started_starts_it_on_retry(
    auth_http: httpx.AsyncClient, redis: Redis
) -> None:
    """The first attempt claimed the message id for a task id, then failed before Temporal started
    it: the retry starts that task instead of answering -32001 for the retention."""
    message_id, task_id = str(uuid.uuid4()), str(uuid.uuid4())
    await redis.set(message_task_key(message_id, "key:alice"), task_id)
    message = {"role": "user", "parts": [{"kind": "text", "text": "hi"}], "messageId": message_id}
    response = await auth_http.post(
        "/", json=rpc_body("message/send", {"message": message}), headers=ALICE
    )
    result = response.json()["result"]
    assert (result["id"], result["status"]["state"]) == (task_id, "completed")
