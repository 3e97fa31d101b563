"""The CLI's A2A client: the SSE decoder, endpoint and card URLs, and what each kind of answer becomes
(results, JSON-RPC errors, transport errors), over httpx's MockTransport."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from gateway.client import (
    A2AClient,
    RpcError,
    SSEDecoder,
    TransportError,
    card_urls,
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


def test_sse_decoder_yields_each_events_data_and_skips_the_rest() -> None:
    decoder = SSEDecoder()
    lines = [
        ": keep-alive",
        "",
        "id: 1-0",
        "event: message",
        'data: {"a":',
        "data:1}",
        "retry: 1000",
        "",
        "data:  two spaces keep one",
        "",
        "data: unterminated",
    ]
    assert [decoder.feed(line) for line in lines] == [
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        '{"a":\n1}',
        None,
        " two spaces keep one",
        None,
    ]
    assert decoder.flush() == "unterminated"
    assert decoder.flush() is None


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
