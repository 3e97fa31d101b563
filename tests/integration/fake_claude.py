"""A local server speaking the Anthropic Messages API's streaming wire format, scripted per request, so the
real `anthropic` SDK can be driven offline."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.devstack.processes import free_port
from tests.waiting import eventually


@dataclass
class ToolUse:
    id: str
    name: str
    input: dict[str, Any]


@dataclass
class Stream:
    """A streamed reply: these text deltas, `delay` seconds apart; then a tool_use block if `tool_use`
    (the message stops for it); or, if `error_type`, an SSE error event instead of the message's end."""

    deltas: list[str]
    delay: float = 0.0
    error_type: str | None = None
    tool_use: ToolUse | None = None
    input_tokens: int = 10
    output_tokens: int = 15


@dataclass
class Failure:
    """An HTTP error answer, as the API sends it."""

    status: int
    error_type: str
    message: str


@dataclass
class FakeClaude:
    url: str
    script: deque[Stream | Failure] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    # Deltas actually written to a client, and set when a client goes away mid-stream.
    sent: list[str] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)

    def expect(self, *steps: Stream | Failure) -> None:
        """Script the next requests' answers, and forget what earlier ones saw."""
        self.script = deque(steps)
        self.requests.clear()
        self.headers.clear()
        self.sent.clear()
        self.disconnected = asyncio.Event()

    async def messages(self, request: Request) -> Response:
        self.requests.append(orjson.loads(await request.body()))
        self.headers.append(dict(request.headers))
        step = self.script.popleft()
        if isinstance(step, Failure):
            body = {"type": "error", "error": {"type": step.error_type, "message": step.message}}
            return Response(orjson.dumps(body), step.status, media_type="application/json")
        return StreamingResponse(self._events(step), media_type="text/event-stream")

    async def _events(self, step: Stream) -> AsyncIterator[bytes]:
        model = self.requests[-1]["model"]
        try:
            yield _sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_test",
                        "type": "message",
                        "role": "assistant",
                        "content": [],
                        "model": model,
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": step.input_tokens, "output_tokens": 1},
                    },
                },
            )
            yield _sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            for index, text in enumerate(step.deltas):
                if index and step.delay:
                    await asyncio.sleep(step.delay)
                yield _sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": text},
                    },
                )
                self.sent.append(text)
            if step.error_type is not None:
                error = {"type": step.error_type, "message": "Overloaded"}
                yield _sse("error", {"type": "error", "error": error})
                return
            yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
            if step.tool_use is not None:
                for event in _tool_use_events(step.tool_use):
                    yield event
            stop_reason = "tool_use" if step.tool_use is not None else "end_turn"
            yield _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": step.output_tokens},
                },
            )
            yield _sse("message_stop", {"type": "message_stop"})
        except asyncio.CancelledError:
            self.disconnected.set()
            raise


def _tool_use_events(tool: ToolUse) -> list[bytes]:
    block = {"type": "tool_use", "id": tool.id, "name": tool.name, "input": {}}
    arguments = orjson.dumps(tool.input).decode()
    return [
        _sse(
            "content_block_start",
            {"type": "content_block_start", "index": 1, "content_block": block},
        ),
        _sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": arguments},
            },
        ),
        _sse("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ]


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@contextlib.asynccontextmanager
async def fake_claude() -> AsyncIterator[FakeClaude]:
    """The fake API on a free loopback port, in this event loop."""
    port = free_port("127.0.0.1")
    fake = FakeClaude(url=f"http://127.0.0.1:{port}")
    app = Starlette(routes=[Route("/v1/messages", fake.messages, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, 30, what="the fake Claude API to start", interval=0.01)
    try:
        yield fake
    finally:
        server.should_exit = True
        await serving
