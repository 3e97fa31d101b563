"""`/ws`: a multiplexed feed of many tasks' events over one WebSocket, for dashboards."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.responses import Response
from starlette.websockets import WebSocket

from gateway.auth import Principal
from gateway.handlers import Handlers
from gateway.streams import Streams
from protocol import A2AError


async def serve_feed(
    websocket: WebSocket,
    *,
    admit: Callable[[], Awaitable[Principal]],
    refused: Callable[[A2AError], Response],
    streams: Streams,
    handlers: Handlers,
) -> None:
    """Serve one socket: `admit()` authenticates its caller (raising an A2AError, which `refused`
    turns into the HTTP answer that denies the upgrade)."""
    raise NotImplementedError
