"""Server-sent event streams of a task: the A2A view (`message/stream`, `tasks/resubscribe`) and the browser
view (`GET /tasks/{id}/events`) of one event log (ARCHITECTURE.md, "Two views of one event log").

Every event carries `id: <stream entry id>`, so a client that reconnects with `Last-Event-ID` (to this or
any other replica) gets exactly the events after it. A comment line keeps idle connections open; a client
whose buffer overflows is closed and resumes the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Protocol

import orjson
from opentelemetry import context as trace_context
from redis.exceptions import RedisError
from starlette.types import Receive, Scope, Send

from gateway.feed import FeedClosed, SlowConsumer, TaskFeed
from gateway.hub import Hub, LogEntry
from gateway.metrics import GatewayMetrics
from gateway.store import SNAPSHOT, TaskStore, snapshot_entry
from protocol import (
    INTERRUPTED_STATES,
    TERMINAL_STATES,
    A2AError,
    InternalError,
    InvalidParamsError,
    RateLimitedError,
    RequestId,
    ServerBusyError,
    Task,
    error_response,
    task_channel,
)

logger = logging.getLogger(__name__)

# The task as a message was accepted: leads a follow-up's `message/stream` (internal, never in the log).
ACCEPTED = "task.accepted"
KEEPALIVE = b": keep-alive\n\n"
SLOW_CONSUMER = b": closed: this client fell behind; reconnect with Last-Event-ID to resume\n\n"
SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_ENTRY_ID = re.compile(r"^(0|\d{1,20}-\d{1,20})$")
_TERMINAL = frozenset(state.value for state in TERMINAL_STATES)
_END_OF_TURN = _TERMINAL | frozenset(state.value for state in INTERRUPTED_STATES)


def parse_last_event_id(value: str | None) -> str | None:
    """A `Last-Event-ID` as a stream entry id, or None when absent. Raises -32602 when malformed."""
    if value is None or value == "":
        return None
    value = value.strip()
    if not _ENTRY_ID.match(value):
        raise InvalidParamsError(
            f"Last-Event-ID must be an event id this gateway sent (like 1700000000000-0), got {value!r}"
        )
    return value


def count_delivered(
    metrics: GatewayMetrics, view: str, entries: Sequence[LogEntry], *, live: bool
) -> None:
    """Count `entries` as written to a client of `view`; when they arrived `live` (not read back from
    the log), observe each one's fan-out lag."""
    metrics.events_delivered.labels(view).inc(len(entries))
    if live:
        now_ms = time.time() * 1000
        lag = metrics.fanout_lag.labels(view)
        for entry in entries:
            lag.observe(max(0.0, now_ms - entry.key[0]) / 1000)


@contextlib.contextmanager
def streaming(metrics: GatewayMetrics, view: str) -> Iterator[None]:
    """One stream of `view` serving its client: counted as active meanwhile, its duration observed
    at the end."""
    active = metrics.active_streams.labels(view)
    active.inc()
    opened = time.perf_counter()
    try:
        yield
    finally:
        active.dec()
        metrics.stream_seconds.labels(view).observe(time.perf_counter() - opened)


def _state(task: dict[str, Any]) -> str:
    state: str = task["status"]["state"]
    return state


class Renderer(Protocol):
    # The metrics label of the view this renderer writes.
    view: str

    def frame(self, entry: LogEntry) -> bytes: ...

    def ends(self, entry: LogEntry) -> bool:
        """Whether the stream closes after this entry."""
        ...

    def over(self, task: dict[str, Any]) -> bool:
        """Whether a task in this state, with nothing left in its log to send, has nothing more to send."""
        ...


def _sse(entry_id: str, data: bytes) -> bytes:
    return b"id: " + entry_id.encode() + b"\ndata: " + data + b"\n\n"


class A2ARenderer:
    """`data:` = a JSON-RPC response to the streaming request (PROTOCOL.md §7)."""

    view = "a2a"

    def __init__(self, request_id: RequestId, history_length: int | None = None) -> None:
        self._request_id = request_id
        self._history_length = history_length

    def frame(self, entry: LogEntry) -> bytes:
        event = entry.event
        kind = event["type"]
        if kind == "task.error":
            response = {"jsonrpc": "2.0", "id": self._request_id, "error": event["error"]}
            return _sse(entry.id, orjson.dumps(response))
        result: dict[str, Any]
        if kind == "task.status":
            result = {
                "taskId": event["taskId"],
                "contextId": event["contextId"],
                "status": event["status"],
                "final": False,
                "kind": "status-update",
            }
        elif kind == "task.progress":
            result = {
                "taskId": event["taskId"],
                "contextId": event["contextId"],
                "artifact": event["artifact"],
                "append": event.get("append", False),
                "lastChunk": event.get("lastChunk", False),
                "kind": "artifact-update",
            }
        elif kind == "task.completed":
            task = event["task"]
            result = {
                "taskId": task["id"],
                "contextId": task["contextId"],
                "status": task["status"],
                "final": True,
                "kind": "status-update",
            }
        else:  # task.created, a snapshot, or the accepted task
            result = self._trimmed(event["task"])
        return _sse(
            entry.id, orjson.dumps({"jsonrpc": "2.0", "id": self._request_id, "result": result})
        )

    def ends(self, entry: LogEntry) -> bool:
        kind = entry.event["type"]
        if kind == SNAPSHOT:
            return self.over(entry.event["task"])
        return kind in ("task.completed", "task.error")

    def over(self, task: dict[str, Any]) -> bool:
        return _state(task) in _END_OF_TURN

    def _trimmed(self, task: dict[str, Any]) -> dict[str, Any]:
        keep = self._history_length
        if keep is None:
            return task
        history = task.get("history") or []
        return {**task, "history": history[len(history) - keep :] if keep else []}


class BrowserRenderer:
    """`data:` = `{"type": ..., ...}` for `EventSource.onmessage`; the stream lives until the task ends."""

    view = "browser"

    def frame(self, entry: LogEntry) -> bytes:
        return _sse(entry.id, orjson.dumps(self.payload(entry)))

    def payload(self, entry: LogEntry) -> dict[str, Any]:
        """What `data:` carries (the `/ws` feed sends the same)."""
        event = entry.event
        kind = event["type"]
        payload: dict[str, Any]
        if kind == "task.status":
            payload = {"type": kind, "taskId": event["taskId"], "status": event["status"]}
        elif kind == "task.progress":
            payload = {
                "type": kind,
                "taskId": event["taskId"],
                "artifact": event["artifact"],
                "append": event.get("append", False),
                "lastChunk": event.get("lastChunk", False),
            }
        elif kind == "task.completed":
            payload = {"type": kind, "task": event["task"]}
        elif kind == "task.error":
            payload = {"type": kind, "taskId": event["taskId"], "error": event["error"]}
        else:  # task.created, or a snapshot that stands in for the log's beginning
            payload = {"type": "task.created", "task": event["task"]}
        return payload

    def ends(self, entry: LogEntry) -> bool:
        event = entry.event
        kind = event["type"]
        if kind in ("task.completed", SNAPSHOT):
            return self.over(event["task"])
        return bool(kind == "task.error")

    def over(self, task: dict[str, Any]) -> bool:
        return _state(task) in _TERMINAL


class StreamLimiter:
    """The caps on concurrent streams in this process: in all, and per principal."""

    def __init__(self, limit: int, per_principal: int | None = None) -> None:
        self.limit = limit
        self.per_principal = per_principal
        self.active = 0
        self.by_principal: dict[str, int] = {}

    def lease(self, principal: str | None = None) -> Lease:
        if self.active >= self.limit:
            raise ServerBusyError(
                "Server busy: this gateway process is at its limit of concurrent streams "
                f"({self.limit}); retry in a moment (any replica can serve the task)"
            )
        if principal is not None and self.per_principal is not None:
            held = self.by_principal.get(principal, 0)
            if held >= self.per_principal:
                raise RateLimitedError(
                    f"Rate limit exceeded: {self.per_principal} concurrent streams per caller "
                    "on this gateway process; close one first"
                )
            self.by_principal[principal] = held + 1
        self.active += 1
        return Lease(self, principal if self.per_principal is not None else None)

    def _release(self, principal: str | None) -> None:
        self.active -= 1
        if principal is not None:
            held = self.by_principal.pop(principal) - 1
            if held:
                self.by_principal[principal] = held


class Lease:
    """One stream's place under the caps; released once, whoever gets there first."""

    def __init__(self, limiter: StreamLimiter, principal: str | None = None) -> None:
        self._limiter: StreamLimiter | None = limiter
        self._principal = principal

    def release(self) -> None:
        if self._limiter is not None:
            self._limiter._release(self._principal)
            self._limiter = None


class EventStream:
    """The ASGI response of one SSE stream: `first` entries, then the feed's, until the renderer says so."""

    def __init__(
        self,
        *,
        task_id: str,
        lease: Lease,
        exit_stack: contextlib.AsyncExitStack,
        feed: TaskFeed | None,
        first: list[LogEntry],
        renderer: Renderer,
        keepalive_seconds: float,
        write_timeout_seconds: float,
        metrics: GatewayMetrics,
    ) -> None:
        self.task_id = task_id
        # `time.perf_counter()` at the request's arrival, when the first artifact chunk written is
        # the request's first token (message/stream).
        self.first_token_from: float | None = None
        # The request's trace: the stream's own Redis reads belong to it, not to traces of their own.
        self._trace_context = trace_context.get_current()
        self._metrics = metrics
        # Why the stream gave up on its client, if it did: "buffer" or "write_timeout".
        self._cut_off: str | None = None
        self._lease = lease
        self._exit_stack = exit_stack
        # None: the stream has nothing beyond `first`.
        self._feed = feed
        self.first = first
        self._renderer = renderer
        self._keepalive = keepalive_seconds
        self._write_timeout = write_timeout_seconds

    @property
    def finished(self) -> bool:
        """Whether the whole stream is `first` (possibly nothing)."""
        return self._feed is None

    @property
    def feed(self) -> TaskFeed | None:
        """What follows `first` (None: nothing), for a reader that writes the frames itself (`/ws`)."""
        return self._feed

    async def close(self) -> None:
        """Release the stream without serving it."""
        try:
            await self._exit_stack.aclose()
        finally:
            self._lease.release()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        traced = trace_context.attach(self._trace_context)
        watcher = asyncio.ensure_future(self._watch_disconnect(receive))
        view = self._renderer.view
        try:
            with streaming(self._metrics, view):
                await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
                if await self._pump(send):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        except TimeoutError:
            # The client has not taken a write for write_timeout seconds: give up on it. Returning
            # mid-response makes the server drop the connection.
            logger.info("Closing a stream whose client stopped reading")
            self._cut_off = self._cut_off or "write_timeout"
        finally:
            watcher.cancel()
            if self._cut_off is not None:
                self._metrics.slow_consumers.labels(view, self._cut_off).inc()
            await self.close()
            trace_context.detach(traced)

    async def _pump(self, send: Send) -> bool:
        """Write frames until the stream ends; False when the response cannot be completed."""
        renderer = self._renderer
        batch = self.first
        live = False
        while True:
            frames = []
            done = False
            for entry in batch:
                frames.append(renderer.frame(entry))
                if renderer.ends(entry):
                    done = True
                    break
            if frames:
                await self._write(send, b"".join(frames))
                self._delivered(batch[: len(frames)], live)
            if done or self._feed is None:
                return True
            try:
                batch = await self._feed.next(self._keepalive)
                live = self._feed.live
            except FeedClosed:
                return True
            except SlowConsumer:
                logger.info("Closing a stream whose client fell behind")
                self._cut_off = "buffer"
                await self._write(send, SLOW_CONSUMER)
                return True
            except (RedisError, TimeoutError) as err:
                logger.warning("Stream ended: reading the task's log failed: %s", err)
                return True
            if not batch:
                await self._write(send, KEEPALIVE)

    def _delivered(self, entries: list[LogEntry], live: bool) -> None:
        count_delivered(self._metrics, self._renderer.view, entries, live=live)
        if self.first_token_from is not None and any(
            entry.event["type"] == "task.progress" for entry in entries
        ):
            self._metrics.first_token.observe(time.perf_counter() - self.first_token_from)
            self.first_token_from = None

    async def _write(self, send: Send, body: bytes) -> None:
        async with asyncio.timeout(self._write_timeout):
            await send({"type": "http.response.body", "body": body, "more_body": True})

    async def _watch_disconnect(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if self._feed is not None:
            self._feed.stop()


class ErrorStream:
    """A stream of exactly one event, a JSON-RPC error, then the end (PROTOCOL.md §7 item 4b)."""

    def __init__(self, request_id: RequestId, error: A2AError) -> None:
        self.code = error.code
        self._data = orjson.dumps(error_response(request_id, error))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        await send({"type": "http.response.body", "body": b"data: " + self._data + b"\n\n"})


class Streams:
    """Opens task streams for this process: the hub subscription, the first read, the stream cap."""

    def __init__(
        self,
        hub: Hub,
        store: TaskStore,
        *,
        max_streams: int,
        keepalive_seconds: float,
        write_timeout_seconds: float,
        find_task: Callable[[str], Awaitable[Task]],
        timeout: float,
        metrics: GatewayMetrics,
        max_streams_per_principal: int | None = None,
    ) -> None:
        """`timeout`: the deadline on opening a stream (the hub's subscription, the first read)."""
        self.hub = hub
        self.metrics = metrics
        self.limiter = StreamLimiter(max_streams, max_streams_per_principal)
        self._store = store
        self._keepalive = keepalive_seconds
        self.write_timeout = write_timeout_seconds
        self._find_task = find_task
        self._timeout = timeout

    def lease(self, principal: str | None = None) -> Lease:
        return self.limiter.lease(principal)

    async def open(
        self,
        lease: Lease,
        task_id: str,
        position: str | None,
        renderer: Renderer,
        *,
        lead: list[LogEntry] | None = None,
        new_turn: bool = False,
    ) -> EventStream:
        """The stream of `task_id` after `position` (None: from its snapshot), led by `lead`.

        `new_turn`: the caller has just delivered a message, so the task has more to say whatever its
        snapshot shows yet. Otherwise an unknown task raises -32001, and a task that has ended with
        nothing after `position` gives a finished stream. The lease is released if this raises.
        """
        exit_stack = contextlib.AsyncExitStack()
        try:
            try:
                subscription = await exit_stack.enter_async_context(
                    self.hub.subscribe(task_channel(task_id), confirm_within=self._timeout)
                )
                feed = TaskFeed(
                    self._store, subscription, task_id, position, close_on_overflow=True
                )
                read = await feed.first()
            except (RedisError, TimeoutError) as err:
                logger.warning("Cannot open the stream of task %s: %s", task_id, err)
                raise InternalError(
                    "Internal error: the task event log (Redis) is unavailable; retry shortly"
                ) from err
            first = [*(lead or []), *read.entries]
            ongoing: TaskFeed | None = feed
            if not read.entries and not new_turn:
                current = read.current
                if current is None:
                    # Redis has lost the task (or never had it): the workflow knows.
                    current = (await self._find_task(task_id)).to_wire()
                    if position is None:
                        first.append(snapshot_entry("0", current))
                        feed.skip_to("0")
                if renderer.over(current):
                    ongoing = None
            if any(renderer.ends(entry) for entry in first):
                ongoing = None
        except BaseException:
            await exit_stack.aclose()
            lease.release()
            raise
        return EventStream(
            task_id=task_id,
            lease=lease,
            exit_stack=exit_stack,
            feed=ongoing,
            first=first,
            renderer=renderer,
            keepalive_seconds=self._keepalive,
            write_timeout_seconds=self.write_timeout,
            metrics=self.metrics,
        )

    async def wait_final(self, task_id: str, after: str) -> Task:
        """The task once its log holds a `task.completed` event after entry `after`."""
        async with self.hub.subscribe(
            task_channel(task_id), confirm_within=self._timeout
        ) as subscription:
            feed = TaskFeed(self._store, subscription, task_id, after, close_on_overflow=False)
            batch = (await feed.first()).entries
            while True:
                for entry in batch:
                    if entry.event["type"] == "task.completed":
                        return Task.model_validate(entry.event["task"])
                batch = await feed.next(None)
