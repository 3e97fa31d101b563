"""The load generator of `bench.soak`: keeps N `message/stream` tasks of the echo agent in flight
against one gateway (or several, in turn), in a process of its own, and checks every frame they carry.

`python -m bench.soak_clients --url http://HOST:PORT --streams N --duration S --chunks K --delay D
--ramp-rate R --results FILE`

Task i sends a text of K fixed-width pieces `[iiiiiii:cccc]` and asks the echo agent (the message's
`metadata.echo`) for K chunks D seconds apart; the agent splits the text into exactly those pieces, so
each artifact chunk names its task and its position. Per stream this process checks that the first
frame is the Task; that each chunk arrives once and in order, `append` false on the first chunk only and
`lastChunk` on the last; that the chunks, reassembled as A2A says (`append` false replaces, true
appends), give back the text sent; and that exactly one `status-update` with `final: true` and state
`completed` ends the stream, nothing after it. A retried turn starts its artifact again (`append`
false on chunk 0): that counts as a restart, and the chunks are checked afresh from there. Each artifact frame's latency is taken from its `id:`, a
Redis stream entry id whose first part is Redis's clock (ms) when the worker appended the event.

Streams start at most R a second, during the ramp and after it; whenever one ends its slot starts
another, so N stay in flight. Once N streams have had their Task frame the soak proper runs S seconds;
then no stream starts, and those in flight finish (each within `--stream-timeout`).

Lines on stdout, for the driver:
    PROGRESS <in flight> <started> <completed> <failed>   every 10 s
    RAMPED <in flight> <seconds>                          N streams have opened; the S seconds start
    DRAINING <in flight>                                  the S seconds are over; no more starts
    DONE                                                  the results file is written; the process exits

With several gateways and `--resume`, a stream whose connection drops (its gateway was killed) goes
on from the next gateway: `tasks/resubscribe` with `Last-Event-ID` set to the last event it carried, or
its `message/stream` again with the same messageId when it carried none; the checks above still hold
across the resume (nothing repeated, nothing missing).

SIGTERM / SIGINT end the run early (streams still open count as broken). Raw asyncio protocols on
uvloop: httpx would need more CPU than the gateway it loads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import resource
import signal
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import orjson
import uvloop

from bench.sse import MAX_HEAD, split_head, sse_blocks, sse_fields

# The echo agent sends at most 10,000 chunks (EchoOptions), so four digits name a chunk.
MAX_CHUNKS = 10_000
MAX_TASKS = 10_000_000
PIECE_LENGTH = len("[0000000:0000]")
PROGRESS_SECONDS = 10.0
# A slot whose stream failed to open waits this long before its next start, so a refusing gateway
# is not hammered.
RETRY_PAUSE_SECONDS = 1.0
# A dropped stream waits this long before it resumes on another gateway.
RESUME_PAUSE_SECONDS = 0.2


def piece(task: int, chunk: int) -> str:
    """The text of chunk `chunk` of task `task`; every piece has the same length."""
    return f"[{task:07d}:{chunk:04d}]"


def task_text(task: int, chunks: int) -> str:
    """What task `task` sends: the echo agent splits it into exactly its `chunks` pieces."""
    return "".join(piece(task, chunk) for chunk in range(chunks))


def parse_piece(text: str) -> tuple[int, int] | None:
    """(task, chunk) of a piece, or None when `text` is not one."""
    if len(text) != PIECE_LENGTH or text[0] != "[" or text[8] != ":" or text[13] != "]":
        return None
    try:
        return int(text[1:8]), int(text[9:13])
    except ValueError:
        return None


class SoakStream(asyncio.Protocol):
    """One `message/stream` request and its SSE response: head, chunked body, frames, checks."""

    __slots__ = (
        "_head",
        "_raw",
        "_run",
        "_sse",
        "after_final",
        "bad_frames",
        "bad_state",
        "chunk_frames",
        "closed",
        "distinct",
        "dropped",
        "duplicated",
        "error",
        "finals",
        "highest",
        "index",
        "last_id",
        "message_id",
        "open_seconds",
        "opened",
        "out_of_order",
        "pieces",
        "resent",
        "restarts",
        "resumes",
        "seen",
        "sent_at",
        "target",
        "task_frame_lag_ms",
        "task_id",
        "transport",
    )

    def __init__(self, run: Soak, index: int) -> None:
        self._run = run
        self.index = index
        self.transport: asyncio.Transport | None = None
        self._head: bytearray | None = bytearray()  # None once the head is parsed
        self._raw = bytearray()  # chunked bytes not decoded yet
        self._sse = bytearray()  # decoded bytes not yet a whole SSE event
        self.closed: asyncio.Future[None] = run.loop.create_future()
        self.sent_at = 0.0
        self.opened = False  # the Task frame has arrived: the task exists
        self.open_seconds = 0.0
        self.task_frame_lag_ms = math.nan
        self.task_id: str | None = None
        self.seen = bytearray(run.chunks)
        self.highest = -1
        self.distinct = 0
        self.chunk_frames = 0
        self.duplicated = 0
        self.out_of_order = 0
        self.restarts = 0
        self.resent = 0
        # Frames that break a rule other than order: wrong JSON-RPC id or taskId, foreign text,
        # wrong `append` / `lastChunk`, an unknown kind, a second Task.
        self.bad_frames = 0
        self.finals = 0
        self.bad_state: str | None = None
        self.after_final = 0
        self.pieces: list[str] = []
        self.error: str | None = None
        self.message_id = str(uuid.uuid4())
        # Resuming (`--resume`): the gateway this stream is on (an index into the run's targets), the
        # id of the last event it carried, whether its connection dropped before the final frame, and
        # how many times it was resumed on another gateway.
        self.target = index % len(run.targets)
        self.last_id: bytes | None = None
        self.dropped = False
        self.resumes = 0

    def resume_elsewhere(self) -> None:
        """Ready the stream for a connection to the next gateway: `tasks/resubscribe` after the last
        event it carried (or the same `message/stream` again, when it carried none)."""
        self.target = (self.target + 1) % len(self._run.targets)
        self.resumes += 1
        self.dropped = False
        self.error = None
        self._head = bytearray()
        self._raw.clear()
        self._sse.clear()
        self.closed = self._run.loop.create_future()

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio.Transport but have its interface.
        self.transport = cast(asyncio.Transport, transport)
        if not self.sent_at:
            self.sent_at = time.monotonic()
        self.transport.write(self._run.request_for(self))

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if self._head is not None:
            split = split_head(self._head, data)
            if split is None:
                if len(self._head) > MAX_HEAD:
                    self.fail("response head too long")
                return
            self._head = None
            head, data = split
            refused = self._start(head)
            if refused is not None:
                # An error answer (503 at the gateway's stream cap, a JSON-RPC error): keep its start.
                self.fail(f"{refused}: {data[:200]!r}")
                return
        if data:
            self._feed(data, now)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finals and self.error is None:
            self.dropped = True
            self.error = f"connection closed before the final frame ({exc or 'by the server'})"
        if not self.closed.done():
            self.closed.set_result(None)

    # -- parsing ----------------------------------------------------------------------------

    @staticmethod
    def _start(head: bytes) -> str | None:
        """Check the response head: None when an SSE stream follows, else what is wrong."""
        parts = head.split(b"\r\n", 1)[0].split(b" ", 2)
        status = parts[1].decode() if len(parts) > 1 else "?"
        if status != "200" or b"content-type: text/event-stream" not in head:
            return f"HTTP {status} without an event stream"
        if b"transfer-encoding: chunked" not in head:
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
        if entry_id:
            self.last_id = entry_id
        if not data:
            return  # a comment (keep-alive) or an id alone
        message: dict[str, Any] = orjson.loads(data)
        result = message.get("result")
        if result is None:
            self.fail(f"JSON-RPC error: {message.get('error')}")
            return
        if self.finals:
            self.after_final += 1
        if message.get("id") != self.index:
            self.bad_frames += 1
        kind = result.get("kind")
        if kind == "task":
            self._task(result, entry_id, now)
        elif result.get("taskId") != self.task_id:
            self.bad_frames += 1
        elif kind == "artifact-update":
            self._artifact(result)
            if entry_id:
                self._run.latencies_ms.append(now * 1000 - int(entry_id.partition(b"-")[0]))
        elif kind == "status-update":
            self._status(result)
        else:
            self.bad_frames += 1

    def _task(self, result: dict[str, Any], entry_id: bytes, now: float) -> None:
        # PROTOCOL.md §7 item 6: the first event of message/stream is the Task.
        if self.opened or self.chunk_frames or self.finals:
            self.bad_frames += 1
            return
        self.opened = True
        self.open_seconds = time.monotonic() - self.sent_at
        if entry_id:
            # The Task frame is the worker's `task.created` entry: how long it took the gateway
            # to deliver it, as against how long the task took to start.
            self.task_frame_lag_ms = now * 1000 - int(entry_id.partition(b"-")[0])
        self.task_id = result.get("id")
        self._run.on_open()

    def _artifact(self, result: dict[str, Any]) -> None:
        parts = result.get("artifact", {}).get("parts", [])
        text = "".join(part.get("text", "") for part in parts if part.get("kind") == "text")
        append = result.get("append") is True
        if append:
            self.pieces.append(text)
        else:
            if self.chunk_frames:
                # A retried turn starts the artifact afresh (append=false; workers/activities.py),
                # replacing what the client has: its chunks are counted again from the first.
                self.restarts += 1
                self.resent += self.distinct
                self.seen = bytearray(len(self.seen))
                self.distinct = 0
                self.highest = -1
            self.pieces = [text]
        self.chunk_frames += 1
        self._run.chunk_frames += 1
        parsed = parse_piece(text)
        if parsed is None or parsed[0] != self.index or parsed[1] >= len(self.seen):
            self.bad_frames += 1
            return
        chunk = parsed[1]
        if self.seen[chunk]:
            self.duplicated += 1
        else:
            self.seen[chunk] = 1
            self.distinct += 1
            if chunk < self.highest:
                self.out_of_order += 1
            self.highest = max(self.highest, chunk)
        last = result.get("lastChunk") is True
        if append != (chunk > 0) or last != (chunk == len(self.seen) - 1):
            self.bad_frames += 1

    def _status(self, result: dict[str, Any]) -> None:
        # A2A 0.2.5 §7.2: the stream ends after the event with final=true.
        if result.get("final"):
            self.finals += 1
            state = result.get("status", {}).get("state")
            if state != "completed":
                self.bad_state = str(state)

    # -- outcome ----------------------------------------------------------------------------

    def fail(self, reason: str) -> None:
        if self.error is None:
            self.error = reason
        if self.transport is not None:
            self.transport.abort()

    def problem(self) -> str | None:
        """None when the stream passed every check, else the first thing wrong with it."""
        chunks = len(self.seen)
        if not self.opened:
            return self.error or "no Task frame"
        if self.finals != 1:
            return self.error or f"{self.finals} final frames"
        checks = [
            (self.bad_state is not None, f"final state {self.bad_state}"),
            (self.distinct != chunks, f"{chunks - self.distinct} of {chunks} chunks missing"),
            (self.duplicated > 0, f"{self.duplicated} chunks duplicated"),
            (self.out_of_order > 0, f"{self.out_of_order} chunks out of order"),
            (self.bad_frames > 0, f"{self.bad_frames} malformed frames"),
            (self.after_final > 0, f"{self.after_final} frames after the final one"),
            (
                "".join(self.pieces) != task_text(self.index, chunks),
                "the reassembled artifact differs from the text sent",
            ),
            (self.error is not None, str(self.error)),
        ]
        return next((reason for wrong, reason in checks if wrong), None)


class CancelProbe:
    """One cancel probe: a stream of its own (a task like the others), cancelled with `tasks/cancel`
    once its first artifact chunk has arrived. Measures from the cancel request's send to the
    stream's final frame, and checks that exactly one final frame, `canceled`, ends the stream."""

    def __init__(self, run: Soak, index: int) -> None:
        self._run = run
        self.index = index
        self.cancel_ms = math.nan  # cancel sent -> final frame on the stream
        self.answer_ms = math.nan  # cancel sent -> tasks/cancel answered
        self.problem: str | None = None

    async def run(self) -> None:
        try:
            async with asyncio.timeout(self._run.stream_timeout):
                await self._probe()
        except (OSError, TimeoutError, ValueError) as err:
            self.problem = self.problem or f"{type(err).__name__}: {err}"

    async def _probe(self) -> None:
        reader, writer = await asyncio.open_connection(self._run.host, self._run.port)
        try:
            writer.write(self._run.request(self.index))
            head = await reader.readuntil(b"\r\n\r\n")
            refused = SoakStream._start(head.lower())
            if refused is not None:
                self.problem = refused
                return
            raw, sse = bytearray(), bytearray()
            task_id: str | None = None
            cancel: asyncio.Task[float] | None = None
            sent = 0.0
            finals: list[str] = []
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                blocks, ended = sse_blocks(raw, sse, data)
                for block in blocks:
                    _, payload = sse_fields(block)
                    if not payload:
                        continue
                    result = orjson.loads(payload).get("result") or {}
                    kind = result.get("kind")
                    if kind == "task":
                        task_id = result.get("id")
                    elif kind == "artifact-update" and cancel is None and task_id:
                        sent = time.monotonic()
                        cancel = asyncio.create_task(self._cancel(task_id, sent))
                    elif kind == "status-update" and result.get("final"):
                        if not finals:
                            self.cancel_ms = (time.monotonic() - sent) * 1000
                        finals.append(str(result.get("status", {}).get("state")))
                if ended:
                    break
            if cancel is None:
                self.problem = "no artifact chunk before the stream ended"
                return
            self.answer_ms = await cancel
            if finals != ["canceled"]:
                self.problem = f"final frames {finals}, not one canceled"
        finally:
            writer.close()

    async def _cancel(self, task_id: str, sent: float) -> float:
        """Send `tasks/cancel`; milliseconds until its answer (NaN when it was not a Task)."""
        reader, writer = await asyncio.open_connection(self._run.host, self._run.port)
        try:
            body = orjson.dumps(
                {"jsonrpc": "2.0", "id": "c", "method": "tasks/cancel", "params": {"id": task_id}}
            )
            writer.write(
                b"POST / HTTP/1.1\r\n"
                + self._run.host_header
                + b"Content-Type: application/json\r\nConnection: close\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            answer = await reader.read()
            state = orjson.loads(answer.partition(b"\r\n\r\n")[2] or b"{}")
            if (state.get("result") or {}).get("status", {}).get("state") != "canceled":
                self.problem = f"tasks/cancel answered {answer[:200]!r}"
                return math.nan
            return (time.monotonic() - sent) * 1000
        finally:
            writer.close()


class Pacer:
    """Hands out start times at most `rate` a second, without banking unused ones."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        at = max(now, self._next)
        self._next = at + self._interval
        if at > now:
            await asyncio.sleep(at - now)


class Soak:
    def __init__(self, loop: asyncio.AbstractEventLoop, args: argparse.Namespace) -> None:
        # (host, port, Host header) of each gateway; streams are spread over them in turn.
        self.targets: list[tuple[str, int, bytes]] = []
        for given in args.url.split(","):
            url = urlsplit(given)
            if url.hostname is None or url.port is None:
                raise SystemExit(f"--url needs a host and a port, got {given!r}")
            header = f"Host: {url.hostname}:{url.port}\r\n".encode()
            self.targets.append((url.hostname, url.port, header))
        self.loop = loop
        self.host, self.port, self.host_header = self.targets[0]
        # A stream whose connection drops is resumed on the next gateway (Last-Event-ID).
        self.resume: bool = args.resume
        self.resumed = 0
        self.streams: int = args.streams
        self.chunks: int = args.chunks
        self.delay: float = args.delay
        self.stream_timeout: float = args.stream_timeout
        self.pacer = Pacer(args.ramp_rate)
        self.cancel_every: float = args.cancel_every
        # Cancel probes: (cancel sent -> final frame ms, cancel answered ms, problem or None).
        self.probes: list[tuple[float, float, str | None]] = []
        self.starting = True
        self.ramped: asyncio.Future[None] = loop.create_future()
        # Streams started and not yet ended.
        self.live: set[SoakStream] = set()
        self.started = 0
        self.opened = 0
        self.completed = 0
        self.failed_to_open = 0
        # Refused with -32000 "server busy" (admission: Temporal not keeping up).
        self.turned_away = 0
        self.broken = 0  # opened, then no final frame
        self.wrong = 0  # a final frame, but some check failed
        self.chunk_frames = 0
        self.open_errors: Counter[str] = Counter()
        self.stream_errors: Counter[str] = Counter()
        self.first_error: str | None = None
        self.totals: Counter[str] = Counter()
        # Per artifact frame: receive time - the Redis clock in its entry id.
        self.latencies_ms: list[float] = []
        # Per stream that opened: seconds since this process started when the request was sent,
        # milliseconds from then to the Task frame, and from the frame's entry id to its arrival.
        self.opens: list[tuple[float, float, float]] = []
        # (task id, artifact frames received) of every task whose Task frame arrived.
        self.tasks: list[tuple[str, int]] = []
        self.in_flight_samples: list[int] = []
        self.marks: dict[str, dict[str, float]] = {}
        self.began = time.monotonic()
        # Streams still open when the run was stopped early (none after a normal drain).
        self.unfinished = 0

    @property
    def in_flight(self) -> int:
        """Streams whose request is out and whose response has not ended."""
        return len(self.live)

    def request(self, index: int, message_id: str | None = None, host_header: bytes = b"") -> bytes:
        body = orjson.dumps(
            {
                "jsonrpc": "2.0",
                "id": index,
                "method": "message/stream",
                "params": {
                    "message": {
                        "kind": "message",
                        "role": "user",
                        "messageId": message_id or str(uuid.uuid4()),
                        "parts": [{"kind": "text", "text": task_text(index, self.chunks)}],
                        "metadata": {"echo": {"chunks": self.chunks, "delay": self.delay}},
                    }
                },
            }
        )
        return self._post(body, host_header or self.host_header)

    def request_for(self, stream: SoakStream) -> bytes:
        """The stream's request on its current gateway: its `message/stream` (sent again, with the
        same messageId, when a dropped connection carried no event), else `tasks/resubscribe` after
        the last event it carried."""
        header = self.targets[stream.target][2]
        if stream.last_id is None or stream.task_id is None:
            return self.request(stream.index, stream.message_id, header)
        body = orjson.dumps(
            {
                "jsonrpc": "2.0",
                "id": stream.index,
                "method": "tasks/resubscribe",
                "params": {"id": stream.task_id},
            }
        )
        return self._post(body, header + b"Last-Event-ID: " + stream.last_id + b"\r\n")

    @staticmethod
    def _post(body: bytes, headers: bytes) -> bytes:
        return (
            b"POST / HTTP/1.1\r\n"
            + headers
            + b"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
            b"Connection: keep-alive\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )

    def on_open(self) -> None:
        self.opened += 1
        if self.opened >= self.streams and not self.ramped.done():
            self.ramped.set_result(None)

    def mark(self, name: str) -> None:
        """The counters at a phase boundary, for the rates of the phase."""
        self.marks[name] = {
            "time": time.monotonic() - self.began,
            "started": self.started,
            "completed": self.completed,
            "chunk_frames": self.chunk_frames,
        }

    async def slot(self) -> None:
        """Start a stream, wait for its end, start another, until the soak stops starting."""
        while self.starting:
            await self.pacer.wait()
            if not self.starting:
                return
            stream = await self._one(self.started)
            self._record(stream)
            if not stream.opened:
                await asyncio.sleep(RETRY_PAUSE_SECONDS)

    async def _one(self, index: int) -> SoakStream:
        if index >= MAX_TASKS:
            raise SystemExit(f"more than {MAX_TASKS} tasks: the pieces have 7 digits for the task")
        self.started += 1
        stream = SoakStream(self, index)
        self.live.add(stream)
        deadline = self.loop.time() + self.stream_timeout
        try:
            while True:
                host, port, _ = self.targets[stream.target]
                try:
                    await self.loop.create_connection(lambda: stream, host, port)
                except OSError as err:
                    stream.fail(f"connect: {err.strerror or err}")
                    stream.dropped = True
                else:
                    try:
                        async with asyncio.timeout_at(deadline):
                            await stream.closed
                    except TimeoutError:
                        stream.fail(
                            "the response did not end after the final frame"
                            if stream.finals
                            else f"no final frame within {self.stream_timeout:.0f}s"
                        )
                        return stream
                if not (self.resume and stream.dropped and self.loop.time() < deadline):
                    return stream
                # Its gateway went away: the stream goes on from the next one.
                if stream.transport is not None:
                    stream.transport.abort()
                stream.resume_elsewhere()
                self.resumed += stream.resumes == 1
                await asyncio.sleep(RESUME_PAUSE_SECONDS)
        finally:
            self.live.discard(stream)
            if stream.transport is not None:
                stream.transport.abort()

    def _record(self, stream: SoakStream) -> None:
        problem = stream.problem()
        if not stream.opened:
            self.failed_to_open += 1
            self.open_errors[(problem or "?")[:100]] += 1
            if problem is not None and '"code":-32000' in problem:
                self.turned_away += 1
        else:
            self.tasks.append((stream.task_id or "", stream.chunk_frames))
            self.opens.append(
                (stream.sent_at - self.began, stream.open_seconds * 1000, stream.task_frame_lag_ms)
            )
            totals = self.totals
            totals["chunks_received"] += stream.distinct
            totals["duplicated"] += stream.duplicated
            totals["restarts"] += stream.restarts
            totals["resumes"] += stream.resumes
            totals["resent"] += stream.resent
            totals["out_of_order"] += stream.out_of_order
            totals["bad_frames"] += stream.bad_frames
            totals["finals"] += stream.finals
            totals["final_streams"] += stream.finals > 0
            totals["after_final"] += stream.after_final
            totals["wrong_final_state"] += stream.bad_state is not None
            if problem is None:
                self.completed += 1
            else:
                if stream.finals:
                    self.wrong += 1
                else:
                    self.broken += 1
                self.stream_errors[problem[:100]] += 1
        if problem is not None and self.first_error is None:
            self.first_error = f"task {stream.index} ({stream.task_id}): {problem}"

    def results(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        samples = self.in_flight_samples
        return {
            "started": self.started,
            "opened": self.opened,
            "completed": self.completed,
            "failed_to_open": self.failed_to_open,
            "turned_away": self.turned_away,
            "resumed": self.resumed,
            "cancel_probes": self.probes,
            "broken": self.broken,
            "wrong": self.wrong,
            "unfinished": self.unfinished,
            "open_errors": dict(self.open_errors),
            "stream_errors": dict(self.stream_errors),
            "first_error": self.first_error,
            "chunks": self.chunks,
            "chunk_frames": self.chunk_frames,
            **self.totals,
            "in_flight": {
                "min": min(samples, default=0),
                "max": max(samples, default=0),
                "mean": sum(samples) / len(samples) if samples else 0.0,
            },
            "marks": self.marks,
            "ramp_seconds": self.marks["ramped"]["time"] - self.marks["start"]["time"]
            if "ramped" in self.marks
            else None,
            "wall_seconds": time.monotonic() - self.began,
            "latencies_ms": self.latencies_ms,
            "opens": self.opens,
            "tasks": self.tasks,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "max_rss_kib": usage.ru_maxrss,
        }


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def report_progress(run: Soak) -> None:
    while True:
        await asyncio.sleep(PROGRESS_SECONDS)
        failed = run.failed_to_open + run.broken + run.wrong
        say(f"PROGRESS {run.in_flight} {run.started} {run.completed} {failed}")


async def sample_in_flight(run: Soak) -> None:
    while True:
        await asyncio.sleep(1.0)
        run.in_flight_samples.append(run.in_flight)


async def cancel_probes(run: Soak) -> None:
    """A cancel probe every `cancel_every` seconds of the soak, beside the N streams."""
    if run.cancel_every <= 0:
        return
    running: set[asyncio.Task[None]] = set()
    index = MAX_TASKS - 1
    try:
        while True:
            await asyncio.sleep(run.cancel_every)
            probe = CancelProbe(run, index)
            index -= 1

            async def one(probe: CancelProbe = probe) -> None:
                await probe.run()
                run.probes.append((probe.cancel_ms, probe.answer_ms, probe.problem))

            task = asyncio.create_task(one())
            running.add(task)
            task.add_done_callback(running.discard)
    finally:
        # Probes under way finish (each ends within a stream's time): their figures count.
        if running:
            await asyncio.shield(asyncio.gather(*running, return_exceptions=True))


async def phases(run: Soak, duration: float, slots: list[asyncio.Task[None]]) -> None:
    """Ramp, soak for `duration` seconds, drain."""
    run.mark("start")
    await run.ramped
    run.mark("ramped")
    say(f"RAMPED {run.in_flight} {run.marks['ramped']['time'] - run.marks['start']['time']:.1f}")
    sampler = asyncio.create_task(sample_in_flight(run))
    probing = asyncio.create_task(cancel_probes(run))
    await asyncio.sleep(duration)
    sampler.cancel()
    probing.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await probing
    run.starting = False
    run.mark("soaked")
    say(f"DRAINING {run.in_flight}")
    await asyncio.gather(*slots)
    run.mark("drained")


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    run = Soak(loop, args)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    slots = [asyncio.create_task(run.slot()) for _ in range(args.streams)]
    progress = asyncio.create_task(report_progress(run))
    running = asyncio.create_task(phases(run, args.duration, slots))
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([running, stopped], return_when=asyncio.FIRST_COMPLETED)
    run.unfinished = len(run.live)
    for task in [running, stopped, progress, *slots]:
        task.cancel()
    for task in [running, stopped, progress, *slots]:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return run.results()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak_clients", description=__doc__)
    parser.add_argument(
        "--url", required=True, help="the gateway, http://HOST:PORT (comma-separated: several)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="resume a dropped stream on the next gateway (Last-Event-ID)",
    )
    parser.add_argument("--results", required=True, help="where to write the JSON results")
    parser.add_argument("--streams", type=int, required=True, help="tasks in flight")
    parser.add_argument("--duration", type=float, required=True, help="seconds after the ramp")
    parser.add_argument("--chunks", type=int, required=True, help="artifact chunks per task")
    parser.add_argument("--delay", type=float, required=True, help="seconds between chunks")
    parser.add_argument("--ramp-rate", type=float, required=True, help="stream starts per second")
    parser.add_argument(
        "--stream-timeout", type=float, required=True, help="seconds a stream may take in all"
    )
    parser.add_argument(
        "--cancel-every",
        type=float,
        default=1.0,
        help="seconds between cancel probes during the soak (0: none)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.chunks <= MAX_CHUNKS:
        parser.error(f"--chunks must be 1 to {MAX_CHUNKS}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = uvloop.run(main_async(args))
    Path(args.results).write_bytes(orjson.dumps(results))
    say("DONE")
    os._exit(0)


if __name__ == "__main__":
    main()
