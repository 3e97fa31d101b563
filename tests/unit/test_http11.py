"""`gateway.http11`: a response with a declared body goes to the socket in one write, and every response
is byte for byte what uvicorn's own protocol sends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from gateway.http11 import JoinedHttpToolsProtocol

ANSWER = b'{"jsonrpc":"2.0","id":1,"result":{"id":"t","kind":"task"}}'


class _Transport:
    """Records what the protocol writes."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    """A JSON answer at `/json`, a body sent in two chunks without a length at `/chunked`, an empty
    answer with a declared length at `/empty`, and an answer sent in two parts at `/parts`."""
    while (await receive()).get("more_body", False):
        pass
    path = scope["path"]
    if path == "/chunked":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        await send({"type": "http.response.body", "body": b"two"})
        return
    body = b"" if path == "/empty" else ANSWER
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if path == "/parts":
        await send({"type": "http.response.body", "body": body[:10], "more_body": True})
        await send({"type": "http.response.body", "body": body[10:]})
    else:
        await send({"type": "http.response.body", "body": body})


async def _serve(protocol_class: type[HttpToolsProtocol], data: bytes, responses: int) -> list[bytes]:
    """What a connection of `protocol_class` writes for `data`, once it has answered `responses`
    requests."""
    state = ServerState()
    protocol = protocol_class(
        config=Config(app=_app, lifespan="off", log_config=None),
        server_state=state,
        app_state={},
    )
    transport = _Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol.data_received(data)
    async with asyncio.timeout(5):
        while state.total_requests < responses:
            await asyncio.sleep(0)
    protocol.connection_lost(None)
    return transport.writes


def _request(method: str, path: str, body: bytes = b"") -> bytes:
    return b"%s %s HTTP/1.1\r\nhost: gw\r\ncontent-length: %d\r\n\r\n%s" % (
        method.encode(),
        path.encode(),
        len(body),
        body,
    )


async def test_a_json_answer_is_one_write_of_what_uvicorn_sends_in_two() -> None:
    request = _request("POST", "/json", b'{"jsonrpc":"2.0"}')

    joined = await _serve(JoinedHttpToolsProtocol, request, 1)
    split = await _serve(HttpToolsProtocol, request, 1)

    assert len(split) == 2
    assert joined == [b"".join(split)]
    assert joined[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert joined[0].endswith(b"content-length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER))


async def test_a_body_sent_in_parts_has_the_head_joined_to_its_first_part() -> None:
    request = _request("POST", "/parts")

    joined = await _serve(JoinedHttpToolsProtocol, request, 1)
    split = await _serve(HttpToolsProtocol, request, 1)

    assert len(split) == 3
    assert joined == [split[0] + split[1], split[2]]


@pytest.mark.parametrize(
    "request_bytes",
    [_request("POST", "/chunked"), _request("HEAD", "/json"), _request("GET", "/empty")],
    ids=["chunked", "head", "empty body"],
)
async def test_other_answers_are_written_as_uvicorn_writes_them(request_bytes: bytes) -> None:
    joined = await _serve(JoinedHttpToolsProtocol, request_bytes, 1)
    split = await _serve(HttpToolsProtocol, request_bytes, 1)

    assert joined == split


async def test_pipelined_requests_are_answered_in_order_one_write_each() -> None:
    request = _request("POST", "/json") + _request("POST", "/empty") + _request("POST", "/json")

    joined = await _serve(JoinedHttpToolsProtocol, request, 3)
    split = await _serve(HttpToolsProtocol, request, 3)

    # uvicorn writes the head and the body of each (the empty body too), in order.
    assert len(split) == 6
    assert joined == [split[0] + split[1], split[2], split[3], split[4] + split[5]]
