"""The HTTP responses of SSE streams: a task's stream (`EventStream`) and the one-event error stream
(`ErrorStream`).

Every event carries `id: <stream entry id>`, so a client that reconnects with `Last-Event-ID` (to this or
any other replica) gets exactly the events after it. A comment line keeps idle connections open; a client
whose buffer overflows is closed and resumes the same way.

Why not sse-starlette's `EventSourceResponse` (3.7.1, tried with these frames, `ping` and `send_timeout`):
`python -m bench.streaming --streams 10000 --rate 1000 --duration 20 --trace-gc`, one gateway process
holding 10,000 `tasks/resubscribe` streams, two runs of each on 2 CPUs (load average 0.8-3.0):

| 10,000 streams, 1,000 events/s             | this module                    | EventSourceResponse            |
| ------------------------------------------ | ------------------------------ | ------------------------------ |
| RSS per stream                             | 21.2, 21.2 KiB                 | 45.6, 45.3 KiB                 |
| gateway CPU, publish phase (% of a core)   | 20, 21                         | 35, 32                         |
| fan-out p50 / p99                          | 0.6 / 2.5, 0.6 / 2.3 ms        | 0.7 / 769, 0.7 / 720 ms        |
| full GC passes (longest; while publishing) | 11 (0.49 s; 0), 11 (0.58 s; 0) | 15 (1.18 s; 1), 15 (0.89 s; 1) |

It runs four tasks per stream besides the request's own (here: one, the disconnect watcher), opens an
anyio cancel scope per write, and pings every `ping` seconds whether or not the stream has been idle. At
10,000 streams the extra live objects make CPython's full collections longer and more frequent; in both
of its runs one fell in the publish phase, stalling every stream (the p99). The frame loop alone,
in-process over 10,000 streams, costs 34-47 us of CPU per event here and 66-71 us through
`EventSourceResponse`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import orjson
from opentelemetry import context as trace_context
from starlette.types import Receive, Scope, Send

from gateway.metrics import GatewayMetrics
from gateway.streaming.batches import Batches, Ending
from gateway.streaming.feed import TaskFeed
from gateway.streaming.limits import Lease, count_delivered, streaming
from gateway.streaming.log import LogEntry
from gateway.streaming.renderers import Renderer
from protocol import A2AError, RequestId, error_response

logger = logging.getLogger(__name__)

KEEPALIVE = b": keep-alive\n\n"
SLOW_CONSUMER = b": closed: this client fell behind; reconnect with Last-Event-ID to resume\n\n"
SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


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

    def batches(self, wait: float | None) -> Batches:
        """The stream's entries (see `Batches`), for a reader that writes the frames itself (`/ws`)."""
        return Batches(self.task_id, self.first, self._feed, self._renderer, wait)

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
                await self._pump(send)
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

    async def _pump(self, send: Send) -> None:
        """Write frames, one write per batch, until the stream ends."""
        renderer = self._renderer
        batches = self.batches(self._keepalive)
        async for batch in batches:
            if batch:
                await self._write(send, b"".join([renderer.frame(entry) for entry in batch]))
                self._delivered(batch, batches.live)
            else:
                await self._write(send, KEEPALIVE)
        if batches.ending is Ending.BEHIND:
            self._cut_off = "buffer"
            await self._write(send, SLOW_CONSUMER)

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
