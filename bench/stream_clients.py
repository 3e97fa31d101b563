"""The load generator of `bench.streaming`: holds one `tasks/resubscribe` stream per task against one
gateway, in a process of its own, on one core.

`python -m bench.stream_clients --url http://HOST:PORT --tasks FILE --results FILE`

FILE holds one task id a line. Streams are opened at most `--concurrency` at a time (so the gateway's
listen backlog is not overrun); a stream is *held* once its first frame, the task snapshot, has arrived.
Each stream then counts its `artifact-update` frames and takes their latency from the publish time
the driver wrote into the artifact's text (`"<time.time()> <sequence number>"`), and from the time in
the frame's `id:` (Redis's clock when it appended the entry, in ms); it ends at the `status-update`
with `"final": true`.

Lines on stdout, for the driver:
    PROGRESS <held> <failed>                    every 1,000 streams opened
    HELD <held> <failed> <seconds>              once every stream is held or has failed to open
    DONE                                        the results file is written; the process exits

The process ends once every stream has closed, or on SIGTERM / SIGINT (then streams still open count
as unfinished). Raw asyncio protocols on uvloop, reading responses with `bench.sse`: httpx would need
more CPU than the gateway it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import resource
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import orjson
import uvloop

from bench.sse import MAX_HEAD, split_head, sse_blocks, sse_fields


class StreamClient(asyncio.Protocol):
    """One `tasks/resubscribe` stream: HTTP response head, chunked body, SSE frames."""

    __slots__ = (
        "_head",
        "_raw",
        "_run",
        "_sse",
        "closed",
        "error",
        "final",
        "held",
        "index",
        "received",
        "sequence_errors",
        "transport",
    )

    def __init__(self, run: Run, index: int) -> None:
        self._run = run
        self.index = index
        self.transport: asyncio.Transport | None = None
        self._head: bytearray | None = bytearray()  # None once the head is parsed
        self._raw = bytearray()  # chunked bytes not decoded yet
        self._sse = bytearray()  # decoded bytes not yet a whole SSE event
        self.held: asyncio.Future[None] = run.loop.create_future()
        self.closed: asyncio.Future[None] = run.loop.create_future()
        self.received = 0
        self.sequence_errors = 0
        self.final = False
        self.error: str | None = None

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio.Transport but have its interface.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self._run.request(self.index))

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if self._head is not None:
            split = split_head(self._head, data)
            if split is None:
                if len(self._head) > MAX_HEAD:
                    self._fail("response head too long")
                return
            self._head = None
            head, data = split
            refused = self._start(head)
            if refused is not None:
                # An error answer (503 when the gateway is at its stream cap, say): keep its start.
                self._fail(f"{refused}: {data[:200]!r}")
                return
        if data:
            self._feed(data, now)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.final and self.error is None:
            self.error = f"connection closed before the final frame ({exc or 'by the server'})"
        self._done(self.held)
        self._done(self.closed)

    # -- parsing ----------------------------------------------------------------------------

    def _start(self, head: bytes) -> str | None:
        """Check the response head: None when an SSE stream follows, else what is wrong."""
        parts = head.split(b"\r\n", 1)[0].split(b" ", 2)
        status = parts[1].decode() if len(parts) > 1 else "?"
        if status != "200" or b"transfer-encoding: chunked" not in head:
            return f"HTTP {status} without a chunked body"
        return None

    def _feed(self, data: bytes, now: float) -> None:
        blocks, ended = sse_blocks(self._raw, self._sse, data)
        for block in blocks:
            self._event(block, now)
        if ended and self.transport is not None:
            # The response is complete; this client has nothing more to ask on the connection.
            self.transport.close()

    def _event(self, block: bytes, now: float) -> None:
        entry_id, data = sse_fields(block)
        if not data:
            return  # a comment (keep-alive) or an id alone
        message: dict[str, Any] = orjson.loads(data)
        result = message.get("result")
        if result is None:
            self._fail(f"JSON-RPC error: {message.get('error')}")
            return
        kind = result.get("kind")
        if kind == "artifact-update":
            stamp, _, sequence = result["artifact"]["parts"][0]["text"].partition(" ")
            self._run.latencies.append(now - float(stamp))
            # The entry id is Redis's clock (ms) at XADD: it splits the latency in two.
            self._run.from_redis.append(now - int(entry_id.partition(b"-")[0]) / 1000)
            if int(sequence) != self.received:
                self.sequence_errors += 1
            self.received += 1
        elif kind == "task":
            if self.held.done():
                self._fail("a second task snapshot")
            self._done(self.held)
        elif kind == "status-update" and result.get("final"):
            self.final = True

    def _fail(self, reason: str) -> None:
        if self.error is None:
            self.error = reason
        if self.transport is not None:
            self.transport.abort()

    @staticmethod
    def _done(future: asyncio.Future[None]) -> None:
        if not future.done():
            future.set_result(None)


class Run:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        task_ids: list[str],
        concurrency: int,
        open_timeout: float,
    ) -> None:
        self.loop = loop
        self.host = host
        self.port = port
        self.task_ids = task_ids
        self.concurrency = concurrency
        self.open_timeout = open_timeout
        self.clients: list[StreamClient | None] = [None] * len(task_ids)
        # Per artifact-update frame: seconds since the publish time in its text, and since the
        # millisecond in its entry id.
        self.latencies: list[float] = []
        self.from_redis: list[float] = []
        self.open_errors: Counter[str] = Counter()
        self.connect_retries = 0
        self.held = 0
        self.failed = 0
        self.open_seconds = 0.0
        self._host_header = f"Host: {host}:{port}\r\n".encode()

    def request(self, index: int) -> bytes:
        body = orjson.dumps(
            {
                "jsonrpc": "2.0",
                "id": index,
                "method": "tasks/resubscribe",
                "params": {"id": self.task_ids[index]},
            }
        )
        return (
            b"POST / HTTP/1.1\r\n"
            + self._host_header
            + b"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
            b"Connection: keep-alive\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )

    async def open_all(self) -> None:
        started = time.monotonic()
        next_index = iter(range(len(self.task_ids)))

        async def opener() -> None:
            for index in next_index:
                if await self._open(index):
                    self.held += 1
                else:
                    self.failed += 1
                if (self.held + self.failed) % 1000 == 0:
                    say(f"PROGRESS {self.held} {self.failed}")

        await asyncio.gather(*(opener() for _ in range(min(self.concurrency, len(self.task_ids)))))
        self.open_seconds = time.monotonic() - started

    async def _open(self, index: int) -> bool:
        client: StreamClient | None = None
        for attempt in range(3):
            try:
                _, client = await self.loop.create_connection(
                    lambda: StreamClient(self, index), self.host, self.port
                )
                break
            except OSError as err:
                if attempt == 2:
                    self.open_errors[f"connect: {err.strerror or err}"] += 1
                    return False
                self.connect_retries += 1
                await asyncio.sleep(0.5 * (attempt + 1))
        assert client is not None
        self.clients[index] = client
        try:
            async with asyncio.timeout(self.open_timeout):
                await client.held
        except TimeoutError:
            client._fail(f"no snapshot within {self.open_timeout:.0f}s")
        if client.error is not None:
            self.open_errors[client.error.split(":", 1)[0][:80]] += 1
            return False
        return True

    async def wait_closed(self) -> None:
        await asyncio.gather(*(c.closed for c in self.clients if c is not None))

    def results(self) -> dict[str, Any]:
        received: list[int] = []
        final: list[bool] = []
        errors: Counter[str] = Counter()
        sequence_errors = 0
        for client in self.clients:
            if client is None:
                received.append(0)
                final.append(False)
                continue
            received.append(client.received)
            final.append(client.final)
            sequence_errors += client.sequence_errors
            if client.error is not None and client.held.done() and client.final is False:
                errors[client.error[:120]] += 1
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "held": self.held,
            "failed_to_open": self.failed,
            "open_errors": dict(self.open_errors),
            "connect_retries": self.connect_retries,
            "open_seconds": self.open_seconds,
            "received": received,
            "final": final,
            "stream_errors": dict(errors),
            "sequence_errors": sequence_errors,
            "latencies_s": self.latencies,
            "from_redis_s": self.from_redis,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "max_rss_kib": usage.ru_maxrss,
        }


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main_async(args: argparse.Namespace, task_ids: list[str]) -> dict[str, Any]:
    url = urlsplit(args.url)
    if url.hostname is None or url.port is None:
        raise SystemExit(f"--url needs a host and a port, got {args.url!r}")
    loop = asyncio.get_running_loop()
    run = Run(loop, url.hostname, url.port, task_ids, args.concurrency, args.open_timeout)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    stopped = asyncio.ensure_future(stop.wait())
    opening = asyncio.ensure_future(run.open_all())
    await asyncio.wait([opening, stopped], return_when=asyncio.FIRST_COMPLETED)
    if not opening.done():
        opening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await opening
    else:
        # What is held from here on lives until the end: keep it out of the collector's full passes,
        # whose pauses would show as fan-out latency.
        gc.collect()
        gc.freeze()
        say(f"HELD {run.held} {run.failed} {run.open_seconds:.2f}")
        closing = asyncio.ensure_future(run.wait_closed())
        await asyncio.wait([closing, stopped], return_when=asyncio.FIRST_COMPLETED)
        closing.cancel()
    stopped.cancel()
    results = run.results()
    for client in run.clients:
        if client is not None and client.transport is not None:
            client.transport.abort()
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_clients", description=__doc__)
    parser.add_argument("--url", required=True, help="the gateway, http://HOST:PORT")
    parser.add_argument("--tasks", required=True, help="a file of task ids, one a line")
    parser.add_argument("--results", required=True, help="where to write the JSON results")
    parser.add_argument("--concurrency", type=int, default=200, help="streams opening at once")
    parser.add_argument(
        "--open-timeout",
        type=float,
        default=60.0,
        help="seconds a stream may wait for its snapshot",
    )
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    task_ids = Path(args.tasks).read_text().split()
    results = uvloop.run(main_async(args, task_ids))
    Path(args.results).write_bytes(orjson.dumps(results))
    say("DONE")
    os._exit(0)


if __name__ == "__main__":
    main()
