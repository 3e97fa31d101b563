"""`/ws`: a multiplexed feed of many tasks' events over one WebSocket, for dashboards.

The socket takes the browser stream's credentials: the API key header or `Authorization: Bearer`, or
(browsers cannot set headers on a WebSocket) `?api_key=` / `?access_token=`. A caller that fails them,
or its rate limit, is refused before the upgrade with the HTTP answer a request would get (401 with
`WWW-Authenticate`, 403, 429, 503); a server without the ASGI denial-response extension closes the
handshake with code 1008 instead.

Every message is one JSON object in a text frame, with a `type`. Client to server:

- `{"type": "subscribe", "taskId": T, "after": ID}` follows task T: its whole log when `after` is absent
  (or null), else the entries strictly after event id ID. Subscribing to a task already subscribed on
  this socket replaces that subscription (to replay from another id, say). Each subscribe counts against
  the caller's request rate and holds one of the gateway's streams (the per-process and per-caller caps),
  and a socket holds at most `MAX_SUBSCRIPTIONS`.
- `{"type": "unsubscribe", "taskId": T}` stops following T.
- `{"type": "ping", "data": ANY}` asks for a pong (the protocol's own pings keep the socket open; this
  one is for the client's liveness checks). `data` is at most `MAX_PING_DATA_BYTES` (1 KiB) as JSON.

A message is at most `MAX_MESSAGE_BYTES` (64 KiB, UTF-8 for a text frame): on a bigger one the server
closes the socket with 1009 (message too big), dropping what it had yet to send.

Server to client:

- `{"type": "subscribed", "taskId": T}` T is followed; its events come next.
- `{"type": "event", "taskId": T, "id": ID, "event": {...}}`: `id` is the entry id in T's log, `event`
  what the browser stream's `data:` carries (`task.created`, `task.status`, `task.progress`,
  `task.completed`, `task.error`: ARCHITECTURE.md, "Two views of one event log"). T's events come in
  log order, each once; different tasks' events interleave.
- `{"type": "end", "taskId": T}` T is over (terminal; a task that waits for input is not), the
  subscription is gone.
- `{"type": "unsubscribed", "taskId": T}` answers an unsubscribe: no event of T follows it (sent as well
  when T was not subscribed).
- `{"type": "pong", "data": ANY}` answers a ping, with its `data` (absent when the ping had none).
- `{"type": "error", "taskId": T or null, "error": {"code": ..., "message": ..., "data": ...}}`.

Errors about a message (-32700 not JSON, -32600 not an object with a string `type`, -32601 an unknown
`type`, -32602 a missing `taskId`, a malformed `after`, a ping's `data` over its limit, which is not
echoed, or a message over the input limits of `protocol.limits`: a value nested deeper than 64 levels,
a `taskId` over 1,024 characters, not echoed either) change nothing; a value of the message they quote
is cut short. Any other error with a `taskId` means that task is not subscribed (any more): -32001 no
such task (or another caller's), -32010 the credential is no longer valid, -32012 the caller's rate,
its streams or this socket's subscriptions at their limit (`data.retryAfter`: seconds), -32000 the
gateway's streams at their limit, -32013 the client fell behind, -32603 the event log could not be read.
The last two end a subscription that was delivering: `data.after` is the id of the last event delivered
(null: none), and subscribing again with it resumes without a loss or a repeat, on any replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect
from temporalio.service import RPCError

from config.redis_clients import REDIS_ERRORS
from gateway.access.auth import Principal
from gateway.access.tenancy import Tenancy
from gateway.streaming.batches import Ending
from gateway.streaming.limits import count_delivered, streaming
from gateway.streaming.log import parse_last_event_id
from gateway.streaming.outbox import Outbox
from gateway.streaming.renderers import BrowserRenderer
from gateway.streaming.sse import EventStream
from gateway.streaming.streams import Streams
from protocol import (
    A2AError,
    FellBehindError,
    InternalError,
    InvalidParamsError,
    InvalidRequestError,
    MethodNotFoundError,
    RateLimitedError,
    ServerBusyError,
)
from protocol.limits import TOO_DEEP, Violation, id_problem, limit_error, read_json, too_deep

logger = logging.getLogger(__name__)

MAX_SUBSCRIPTIONS = 100
# `serve` gives uvicorn this as its ws_max_size, so that uvicorn refuses a bigger message before it has
# read it; `_Socket` refuses one as well, for servers without such a limit. The messages a client sends
# are a few hundred bytes.
MAX_MESSAGE_BYTES = 64 * 1024
# A pong echoes its ping's data: a small token or timestamp, not a payload for the server to hold.
MAX_PING_DATA_BYTES = 1024
# A client's value quoted in an error message is cut to this many characters.
_QUOTE_CHARS = 64
# Frames waiting for the socket: at most this many, and this many bytes in all (but for one frame that
# is bigger alone: an event that ends a task carries the whole task, every artifact included). When the
# outbox is full, subscriptions stop reading their feeds, whose buffers then overflow: a client that
# does not keep up loses its subscriptions (-32013), never events.
OUTBOX_FRAMES = 256
OUTBOX_BYTES = 1024 * 1024
VIEW = "ws"
# RFC 6455 §7.4.1: policy violation, for servers that cannot deny the upgrade with an HTTP answer.
POLICY_VIOLATION = 1008
# RFC 6455 §7.4.1: a message too big to process.
MESSAGE_TOO_BIG = 1009
# RFC 6455 §5.5: a close frame's reason fits in 123 bytes.
_CLOSE_REASON_BYTES = 123


class _SocketClosed(Exception):
    """The client went away or stopped reading: the socket is done."""


class _MessageTooBig(Exception):
    """The client sent a message over `MAX_MESSAGE_BYTES`: the socket is to be closed."""


async def serve_feed(
    websocket: WebSocket,
    *,
    admit: Callable[[], Awaitable[Principal]],
    refused: Callable[[A2AError], Response],
    streams: Streams,
    tenancy: Tenancy,
) -> None:
    """Serve one socket: `admit()` authenticates its caller (raising an A2AError, which `refused`
    turns into the HTTP answer that denies the upgrade)."""
    # No Origin check: credentials are never ambient (no cookies), so a foreign page that opens this
    # socket gets nothing it could not get over plain HTTP.
    try:
        principal = await admit()
    except A2AError as err:
        if "websocket.http.response" in websocket.scope.get("extensions", {}):
            await websocket.send_denial_response(refused(err))
        else:
            reason = err.message.encode()[:_CLOSE_REASON_BYTES].decode(errors="ignore")
            await websocket.close(POLICY_VIOLATION, reason)
        return
    await websocket.accept()
    await _Socket(websocket, principal, admit, streams, tenancy).serve()


class _Socket:
    """One accepted socket: a reader of client messages, one writer, and a pump per subscription."""

    def __init__(
        self,
        websocket: WebSocket,
        principal: Principal,
        admit: Callable[[], Awaitable[Principal]],
        streams: Streams,
        tenancy: Tenancy,
    ) -> None:
        self._websocket = websocket
        self._principal = principal
        self._admit = admit
        self._streams = streams
        self._tenancy = tenancy
        self._metrics = streams.metrics
        self._renderer = BrowserRenderer()
        self._outbox = Outbox(OUTBOX_FRAMES, OUTBOX_BYTES)
        # Task id -> the pump that serves its subscription.
        self._subscriptions: dict[str, asyncio.Task[None]] = {}
        self._group = asyncio.TaskGroup()
        self._on: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {
            "subscribe": self._on_subscribe,
            "unsubscribe": self._on_unsubscribe,
            "ping": self._on_ping,
        }

    async def serve(self) -> None:
        """Until the client leaves; then every subscription is cancelled (leases released, hub
        channels left) by the task group."""
        try:
            async with self._group:
                self._group.create_task(self._send_all())
                await self._receive_all()
        except* _SocketClosed:
            pass
        except* _MessageTooBig:
            logger.info("Closing a WebSocket whose client sent a message over the limit")
            reason = f"Message too big: at most {MAX_MESSAGE_BYTES} bytes"
            # The writer is gone: if the client has gone too, there is nobody to tell.
            with contextlib.suppress(WebSocketDisconnect):
                await self._websocket.close(MESSAGE_TOO_BIG, reason)

    async def _receive_all(self) -> None:
        while True:
            message = await self._websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise _SocketClosed
            text = message.get("text")
            data = text if text is not None else message.get("bytes") or b""
            if len(data) > MAX_MESSAGE_BYTES or (
                isinstance(data, str) and len(data.encode()) > MAX_MESSAGE_BYTES
            ):
                raise _MessageTooBig
            await self._on_message(data)

    async def _send_all(self) -> None:
        """The socket's one writer."""
        while True:
            frame = await self._outbox.get()
            try:
                async with asyncio.timeout(self._streams.write_timeout):
                    await self._websocket.send_text(frame)
            except TimeoutError:
                logger.info("Closing a WebSocket whose client stopped reading")
                self._metrics.slow_consumers.labels(VIEW, "write_timeout").inc()
                raise _SocketClosed from None
            except WebSocketDisconnect:
                raise _SocketClosed from None

    async def _put(self, message: dict[str, Any]) -> None:
        await self._outbox.put(orjson.dumps(message))

    async def _on_message(self, data: str | bytes) -> None:
        task_id = None
        try:
            message = read_json(data)
            if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                raise InvalidRequestError(
                    'Request payload validation error: a message is a JSON object with a string "type"'
                )
            named = message.get("taskId")
            if isinstance(named, str) and named and id_problem(named) is None:
                task_id = named
            _check_limits(message)
            handler = self._on.get(message["type"])
            if handler is None:
                raise MethodNotFoundError(
                    f"Method not found: no message type {_quoted(message['type'])} "
                    f"(this feed takes {', '.join(self._on)})"
                )
            await handler(message)
        except A2AError as err:
            await self._put(_error(task_id, err))

    async def _on_subscribe(self, message: dict[str, Any]) -> None:
        task_id = _task_id(message)
        after = message.get("after")
        if after is not None and not isinstance(after, str):
            raise InvalidParamsError(
                f"Invalid parameters: after must be a string, got {_quoted(after)}"
            )
        try:
            position = parse_last_event_id(after)
        except InvalidParamsError:
            raise InvalidParamsError(
                "Invalid parameters: after must be an event id this feed sent "
                f"(like 1700000000000-0), got {_quoted(after)}"
            ) from None
        await self._drop(task_id)
        if len(self._subscriptions) >= MAX_SUBSCRIPTIONS:
            raise RateLimitedError(
                f"Rate limit exceeded: at most {MAX_SUBSCRIPTIONS} subscriptions per socket; "
                "unsubscribe from one first"
            )
        self._subscriptions[task_id] = self._group.create_task(self._follow(task_id, position))

    async def _on_unsubscribe(self, message: dict[str, Any]) -> None:
        task_id = _task_id(message)
        await self._drop(task_id)
        await self._put({"type": "unsubscribed", "taskId": task_id})

    async def _on_ping(self, message: dict[str, Any]) -> None:
        pong = {"type": "pong"}
        if "data" in message:
            size = len(orjson.dumps(message["data"]))
            if size > MAX_PING_DATA_BYTES:
                raise InvalidParamsError(
                    f"Invalid parameters: a ping's data is at most {MAX_PING_DATA_BYTES} bytes "
                    f"of JSON, got {size}; it is not echoed"
                )
            pong["data"] = message["data"]
        await self._put(pong)

    async def _drop(self, task_id: str) -> None:
        """End the task's subscription, if any, once its pump has stopped (frames it queued before
        stay ahead of whatever is queued next)."""
        pump = self._subscriptions.pop(task_id, None)
        if pump is not None:
            pump.cancel()
            await asyncio.wait([pump])

    async def _follow(self, task_id: str, after: str | None) -> None:
        """One subscription, until the task ends or the subscription fails; cancelled by an
        unsubscribe, a new subscribe to the task, or the socket's end."""
        cursor = _Cursor(after)
        try:
            last = await self._pump(task_id, cursor)
        except A2AError as err:
            last = _error(task_id, err)
        except (*REDIS_ERRORS, OSError, TimeoutError, RPCError) as err:
            logger.warning("WebSocket subscription to task %s failed: %s", task_id, err)
            last = _error(task_id, InternalError("Internal error: the task cannot be read; retry"))
        except Exception:
            logger.exception("WebSocket subscription to task %s failed", task_id)
            last = _error(task_id, InternalError())
        # The slot is free before the client learns the subscription is over, so it may subscribe
        # again at once.
        if self._subscriptions.get(task_id) is asyncio.current_task():
            del self._subscriptions[task_id]
        await self._put(last)

    async def _pump(self, task_id: str, cursor: _Cursor) -> dict[str, Any]:
        """Open the task's stream and forward it; the frame that ends the subscription."""
        await self._admit()
        await self._tenancy.authorize(task_id, self._principal)
        lease = self._streams.lease(self._tenancy.scope(self._principal))
        # From the start of the log, like the browser stream without Last-Event-ID.
        stream = await self._streams.open(lease, task_id, cursor.after or "0", self._renderer)
        try:
            await self._put({"type": "subscribed", "taskId": task_id})
            return await self._forward(task_id, stream, cursor)
        finally:
            await stream.close()

    async def _forward(self, task_id: str, stream: EventStream, cursor: _Cursor) -> dict[str, Any]:
        renderer = self._renderer
        metrics = self._metrics
        with streaming(metrics, VIEW):
            batches = stream.batches(None)
            async for batch in batches:
                for entry in batch:
                    event = renderer.payload(entry)
                    await self._put(
                        {"type": "event", "taskId": task_id, "id": entry.id, "event": event}
                    )
                    cursor.after = entry.id
                    count_delivered(metrics, VIEW, [entry], live=batches.live)
        if batches.ending is Ending.BEHIND:
            metrics.slow_consumers.labels(VIEW, "buffer").inc()
            raise FellBehindError(
                f"Fell behind: this socket did not keep up with task '{task_id}'; "
                "subscribe again with after to resume",
                {"after": cursor.after},
            )
        if batches.ending is Ending.CLOSED:
            raise InternalError(
                "Internal error: this gateway is shutting down; subscribe again (to any "
                "replica) with after to resume",
                {"after": cursor.after},
            )
        if batches.ending is Ending.FAILED:
            raise InternalError(
                f"Internal error: the event log of task '{task_id}' cannot be read now; "
                "subscribe again with after to resume",
                {"after": cursor.after},
            )
        return {"type": "end", "taskId": task_id}


class _Cursor:
    """The id of the last event a subscription delivered (None: from the start)."""

    __slots__ = ("after",)

    def __init__(self, after: str | None) -> None:
        self.after = after


def _check_limits(message: dict[str, Any]) -> None:
    """-32602 for a message over the input limits (`protocol.limits`): a value nested deeper than
    `MAX_DEPTH` levels (each measured from itself, a ping's `data` say), a `taskId` over
    `MAX_ID_CHARS` characters."""
    found = [Violation(key, TOO_DEEP) for key, value in message.items() if too_deep(value)]
    problem = id_problem(message.get("taskId"))
    if problem is not None:
        found.append(Violation("taskId", problem))
    if found:
        raise limit_error("Invalid parameters", found)


def _task_id(message: dict[str, Any]) -> str:
    task_id = message.get("taskId")
    if not isinstance(task_id, str) or not task_id:
        raise InvalidParamsError(
            f"Invalid parameters: {message['type']} needs a taskId (a non-empty string)"
        )
    return task_id


def _quoted(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 1] + "…"


def _error(task_id: str | None, err: A2AError) -> dict[str, Any]:
    error = err.to_wire()
    if isinstance(err, RateLimitedError | ServerBusyError) and err.data is None:
        error["data"] = {"retryAfter": err.retry_after}
    return {"type": "error", "taskId": task_id, "error": error}
