"""`python -m bench.streaming [--streams M ...] [--rate R] [--duration S]`: SSE fan-out of one gateway
process to M concurrent `tasks/resubscribe` streams.

Starts a Temporal dev server (the gateway's lifespan connects to it; no workflow runs here) and a Redis
on free loopback ports. For each level M: starts a fresh gateway (`a2a-gateway serve`), creates M tasks
in state `working` straight in Redis through `workers.publisher.EventPublisher` (the worker's own Lua
step), warms the gateway up with a few streams and takes its RSS as the baseline; a separate
load-generator process (`bench.stream_clients`) opens one stream per task and says when all are held;
the RSS is taken again. Then this process publishes `task.progress` events at R events/s in total for
S seconds, round-robin over the M tasks, each carrying its publish time, so the clients measure
publish -> receive latency; then a `task.completed` per task ends every stream.

Prints a line per phase and a Markdown table row per level, and writes the table to
`bench/results/streaming.md` (logs in `bench/results/logs/`). Every process it started is stopped on
the way out, Ctrl-C included. The exit code reflects failures only, never the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import math
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson
from redis.asyncio import Redis

from bench.harness import BenchError, exit_with, open_log, percentile, stopping
from bench.stream_clients import Run as StreamRun
from gateway.devstack.processes import ManagedProcess, free_port, start_redis, start_temporal
from protocol import Artifact, Message, Task, TaskEvent, TaskState, TaskStatus, TextPart, timestamp
from workers.publisher import EventPublisher

logger = logging.getLogger("bench.streaming")

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
LOGS_DIR = RESULTS_DIR / "logs"
DEFAULT_STREAMS = [1_000, 5_000, 10_000]
DEFAULT_RATE = 1_000.0
DEFAULT_DURATION = 20.0
# Streams opened, fed and closed before the RSS baseline, so one-time costs (imports on first use,
# caches, the pub/sub path) are not charged to the measured streams.
WARMUP_STREAMS = 20
# Streams the load generator opens at once, and publishes in flight from this process.
OPEN_CONCURRENCY = 200
PUBLISH_CONCURRENCY = 64
# As the worker's defaults (workers/settings.py).
STREAM_MAX_LENGTH = 10_000
TTL_SECONDS = 3_600
READY_TIMEOUT = 60.0
SETTLE_SECONDS = 2.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGETS = (
    "10,000 concurrent streams on one process; fan-out p99 <= 50 ms at 1,000 streams; "
    "<= 64 KiB gateway RSS per stream; 0 events lost"
)
COLUMNS = [
    "streams requested",
    "streams held",
    "events published",
    "events lost",
    "streams w/o final",
    "fan-out p50 ms",
    "p99 ms",
    "max ms",
    "gateway RSS baseline MiB",
    "RSS per stream KiB",
    "gateway CPU % (publish)",
    "load-gen CPU % (publish)",
    "publish rate achieved ev/s",
]


# With --trace-gc, put on the gateway's PYTHONPATH as sitecustomize.py: logs each full collection.
GC_PROBE = """\
import gc, sys, time

_started = [0.0]


def _probe(phase, info):
    if info["generation"] != 2:
        return
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    pause = time.perf_counter() - _started[0]
    sys.stderr.write(f"GC-PROBE {time.time():.3f} {pause * 1000:.1f}\\n")
    sys.stderr.flush()


gc.callbacks.append(_probe)
"""


@dataclass
class Stack:
    temporal_address: str
    redis_url: str
    redis: ManagedProcess
    logs: Path
    work_dir: Path
    processes: list[ManagedProcess] = field(default_factory=list)


@dataclass
class LevelResult:
    streams: int
    held: int = 0
    published: int = 0
    publish_failures: int = 0
    lost: int = 0
    duplicated: int = 0
    unfinished: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    baseline_rss_kib: int = 0
    held_rss_kib: int = 0
    gateway_cpu: float = 0.0
    loadgen_cpu: float = 0.0
    achieved_rate: float = 0.0
    gateway_log_problems: list[str] = field(default_factory=list)

    @property
    def rss_per_stream_kib(self) -> float:
        return (self.held_rss_kib - self.baseline_rss_kib) / self.held if self.held else math.nan

    def row(self) -> list[str]:
        ordered = sorted(self.latencies_ms)

        def ms(q: float) -> str:
            return f"{percentile(ordered, q):.1f}" if ordered else "n/a"

        return [
            f"{self.streams:,}",
            f"{self.held:,}",
            f"{self.published:,}",
            f"{self.lost:,}",
            f"{self.unfinished:,}",
            ms(50),
            ms(99),
            ms(100),
            f"{self.baseline_rss_kib / 1024:.1f}",
            f"{self.rss_per_stream_kib:.1f}",
            f"{self.gateway_cpu:.0f}",
            f"{self.loadgen_cpu:.0f}",
            f"{self.achieved_rate:,.0f}",
        ]


# ---- /proc --------------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class CpuMeter:
    """CPU % of one core of some processes over an interval."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._started = time.monotonic()
        self._cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}

    def percent(self) -> dict[str, float]:
        elapsed = time.monotonic() - self._started
        return {
            name: 100 * (cpu_seconds(pid) - self._cpu[name]) / elapsed
            for name, pid in self._pids.items()
        }


# ---- processes ----------------------------------------------------------------------------------


def child_env(stack: Stack) -> dict[str, str]:
    # The children import `bench`, `gateway` and `workers` from this checkout whatever the cwd.
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {
        **os.environ,
        "PYTHONPATH": pythonpath,
        "TEMPORAL_ADDRESS": stack.temporal_address,
        "REDIS_URL": stack.redis_url,
    }


def start_stack(started: list[ManagedProcess], logs: Path, work_dir: Path) -> Stack:
    port = free_port(HOST)
    logger.info("starting the Temporal dev server on %s:%d", HOST, port)
    with open_log(logs, "streaming-temporal") as log:
        started.append(start_temporal(host=HOST, port=port, log=log))
    temporal_address = f"{HOST}:{port}"
    port = free_port(HOST)
    logger.info("starting Redis on %s:%d", HOST, port)
    with open_log(logs, "streaming-redis") as log:
        redis = start_redis(host=HOST, port=port, data_dir=work_dir / "redis", log=log)
    started.append(redis)
    return Stack(temporal_address, f"redis://{HOST}:{port}/0", redis, logs, work_dir, started)


def start_gateway(stack: Stack, streams: int, trace_gc: bool) -> tuple[ManagedProcess, str, Path]:
    port = free_port(HOST)
    script = Path(sys.executable).with_name("a2a-gateway")
    args = [str(script), "serve"] if script.exists() else [sys.executable, "-m", "gateway", "serve"]
    env = {
        **child_env(stack),
        "A2A_GATEWAY_HOST": HOST,
        "A2A_GATEWAY_PORT": str(port),
        "A2A_GATEWAY_MAX_STREAMS": str(streams + WARMUP_STREAMS + 100),
    }
    if trace_gc:
        probe = stack.work_dir / "gc-probe"
        probe.mkdir(exist_ok=True)
        (probe / "sitecustomize.py").write_text(GC_PROBE)
        env["PYTHONPATH"] = os.pathsep.join([str(probe), env["PYTHONPATH"]])
    log_path = stack.logs / f"streaming-gateway-{streams}.log"
    with log_path.open("wb") as log:
        gateway = ManagedProcess("gateway", args, env=env, log=log)
    stack.processes.append(gateway)
    logger.info("[%d] started a fresh gateway on port %d (pid %d)", streams, port, gateway.pid)
    return gateway, f"http://{HOST}:{port}", log_path


async def wait_healthy(gateway: ManagedProcess, port: int) -> None:
    """Until GET /healthz answers 200 (the lifespan has connected to Temporal and Redis)."""
    deadline = time.monotonic() + READY_TIMEOUT
    request = f"GET /healthz HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode()
    while True:
        if not gateway.running():
            raise BenchError(f"the gateway exited with code {gateway.process.returncode}")
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection(HOST, port)
            try:
                writer.write(request)
                status = await asyncio.wait_for(reader.readline(), 2.0)
            finally:
                writer.close()
            if status.split(b" ")[1:2] == [b"200"]:
                return
        if time.monotonic() > deadline:
            raise BenchError(
                f"the gateway's /healthz did not answer 200 within {READY_TIMEOUT:.0f}s"
            )
        await asyncio.sleep(0.2)


class LineReader:
    """The load generator's stdout, line by line, without blocking the loop; copied to `log`, and
    its PROGRESS lines' fields handed to `on_progress`."""

    def __init__(
        self,
        process: ManagedProcess,
        log: IO[bytes],
        on_progress: Callable[[list[str]], None] | None = None,
    ) -> None:
        self._process = process
        self._log = log
        self._on_progress = on_progress or _log_streams_held
        self._reader = asyncio.StreamReader()
        self._transport: asyncio.BaseTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        pipe = self._process.process.stdout
        assert pipe is not None
        self._transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(self._reader), pipe
        )

    async def expect(self, word: str, within: float, alive: Iterable[ManagedProcess]) -> list[str]:
        """The fields of the next line starting with `word`; logs progress, keeps anything else."""
        deadline = time.monotonic() + within
        while True:
            for process in alive:
                if not process.running():
                    raise BenchError(
                        f"the {process.name} exited with code {process.process.returncode} while "
                        f"waiting for {word} from the load generator"
                    )
            if time.monotonic() > deadline:
                raise BenchError(f"no {word} from the load generator within {within:.0f}s")
            try:
                raw = await asyncio.wait_for(self._reader.readline(), 2.0)
            except TimeoutError:
                continue
            if not raw:
                raise BenchError(f"the load generator ended before {word}; see {self._log.name}")
            self._log.write(raw)
            self._log.flush()
            fields = raw.decode(errors="replace").split()
            if fields[:1] == [word]:
                return fields[1:]
            if fields[:1] == ["PROGRESS"]:
                self._on_progress(fields[1:])

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _log_streams_held(fields: list[str]) -> None:
    logger.info("  load generator: %s streams held, %s failed", fields[0], fields[1])


# ---- publishing ---------------------------------------------------------------------------------


def new_task() -> Task:
    now = timestamp(datetime.now(UTC))
    task_id = str(uuid.uuid4())
    context_id = str(uuid.uuid4())
    message = Message(
        role="user",
        parts=[TextPart(text="stream me")],
        messageId=str(uuid.uuid4()),
        taskId=task_id,
        contextId=context_id,
    )
    return Task(
        id=task_id,
        contextId=context_id,
        status=TaskStatus(state=TaskState.WORKING, timestamp=now),
        history=[message],
    )


def completed(task: Task) -> Task:
    status = TaskStatus(state=TaskState.COMPLETED, timestamp=timestamp(datetime.now(UTC)))
    return task.model_copy(update={"status": status})


async def bounded(calls: Iterable[Callable[[], Awaitable[Any]]], limit: int) -> None:
    """Run the calls, at most `limit` at once."""
    iterator = iter(calls)

    async def worker() -> None:
        for call in iterator:
            await call()

    await asyncio.gather(*(worker() for _ in range(limit)))


class ProgressPublisher:
    """`task.progress` events at a set total rate, round-robin over the tasks, several in flight.

    The artifact's text is `"<time.time()> <n>"`: the publish time, taken just before the Redis call,
    and the event's sequence number within its task. The snapshot stored with each event is the
    working task as created: the gateway reads snapshots only when a stream opens."""

    def __init__(self, publisher: EventPublisher, tasks: list[Task]) -> None:
        self._publisher = publisher
        self._tasks = tasks
        self.published = [0] * len(tasks)
        self.failures: Counter[str] = Counter()
        self._artifact_ids = [str(uuid.uuid4()) for _ in tasks]

    async def _publish(self, index: int, sequence: int) -> None:
        task = self._tasks[index]
        artifact = Artifact(
            artifactId=self._artifact_ids[index],
            parts=[TextPart(text=f"{time.time():.6f} {sequence}")],
        )
        event = TaskEvent.progress(task, artifact, append=True, last_chunk=False)
        try:
            await self._publisher.publish(event, task)
        except Exception as err:
            self.failures[f"{type(err).__name__}: {err}"] += 1
        else:
            self.published[index] += 1

    async def run(self, rate: float, duration: float) -> tuple[int, float]:
        """Publish for `duration` seconds; the events published and the rate achieved."""
        total = int(rate * duration)
        count = len(self._tasks)
        # Two events of one task never in flight together, so they reach Redis in order.
        limit = min(PUBLISH_CONCURRENCY, count)
        pending: set[asyncio.Task[None]] = set()
        started = time.monotonic()
        sent = 0
        while sent < total:
            due = min(total, int((time.monotonic() - started) * rate) + 1)
            while sent < due:
                if len(pending) >= limit:
                    _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                index = sent % count
                pending.add(asyncio.create_task(self._publish(index, sent // count)))
                sent += 1
            next_due = started + sent / rate
            await asyncio.sleep(max(0.0, next_due - time.monotonic()))
        if pending:
            await asyncio.wait(pending)
        elapsed = time.monotonic() - started
        published = sum(self.published)
        return published, published / elapsed


# ---- one level ----------------------------------------------------------------------------------


def log_latency_split(tag: str, total_ms: list[float], from_redis_s: list[float]) -> None:
    """Where the fan-out time goes: Redis's ms clock at XADD splits publish -> client in two."""
    if not total_ms:
        return
    total = sorted(total_ms)
    # The entry id truncates to the ms: up to 1 ms of Redis -> client is counted before it.
    after = sorted(value * 1000 for value in from_redis_s)
    before = sorted(t - a for t, a in zip(total_ms, (v * 1000 for v in from_redis_s), strict=True))
    logger.info(
        "%s fan-out ms p50 / p99 / max: publish -> client %.1f / %.1f / %.1f; publish -> Redis "
        "XADD %.1f / %.1f / %.1f; Redis XADD -> client %.1f / %.1f / %.1f (entry ids are in ms)",
        tag,
        *(percentile(values, q) for values in (total, before, after) for q in (50, 99, 100)),
    )


def gc_pauses(path: Path) -> list[tuple[float, float]]:
    """(end time, milliseconds) of each full collection the GC probe logged."""
    pauses = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("GC-PROBE "):
            _, end, ms = line.split()
            pauses.append((float(end), float(ms)))
    return pauses


def log_gc_pauses(tag: str, path: Path, publish_window: tuple[float, float]) -> None:
    pauses = gc_pauses(path)
    start, end = publish_window
    during = [ms for finished, ms in pauses if start <= finished and finished - ms / 1000 <= end]
    logger.info(
        "%s gateway full GC passes: %d in the level (longest %.0f ms), %d during the publish "
        "phase (longest %.0f ms)",
        tag,
        len(pauses),
        max((ms for _, ms in pauses), default=0.0),
        len(during),
        max(during, default=0.0),
    )


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_IDS = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}(:\d+)*")
# The SDK core's structured fields (durations, sizes) that differ between repeats of one message.
_FIELDS = re.compile(r"\s\w+=\S+")


def gateway_log_problems(path: Path) -> list[str]:
    """Distinct WARNING / ERROR / traceback lines of a Python process's log, with counts: its own
    lines and the Temporal SDK core's (`WARN`, `ERROR`, in colour), task and run ids and the core's key=value fields left out."""
    counts: Counter[str] = Counter()
    for raw in path.read_text(errors="replace").splitlines():
        line = _ANSI.sub("", raw)
        if any(f" {level} " in line for level in ("WARNING", "WARN", "ERROR", "CRITICAL")) or (
            "Traceback" in line
        ):
            # Drop the timestamp and the ids so repeats of one message count together.
            message = _FIELDS.sub("", _IDS.sub("<id>", line.split(" ", 2)[-1].strip()))
            counts[message[:200]] += 1
    return [f"{n} x {message}" for message, n in counts.most_common()]


async def warm_up(publisher: EventPublisher, host: str, port: int) -> None:
    """A few streams through the whole path (open, an event, the end) before the RSS baseline."""
    tasks = [new_task() for _ in range(WARMUP_STREAMS)]
    for task in tasks:
        await publisher.publish(TaskEvent.created(task), task)
    run = StreamRun(
        asyncio.get_running_loop(), host, port, [t.id for t in tasks], WARMUP_STREAMS, 30.0
    )
    await run.open_all()
    if run.failed:
        raise BenchError(f"warm-up streams failed to open: {dict(run.open_errors)}")
    progress = ProgressPublisher(publisher, tasks)
    await progress.run(rate=WARMUP_STREAMS * 10, duration=0.5)
    for task in tasks:
        done = completed(task)
        await publisher.publish(TaskEvent.completed(done), done)
    async with asyncio.timeout(30):
        await run.wait_closed()


async def run_level(
    stack: Stack, streams: int, rate: float, duration: float, redis: Redis, trace_gc: bool
) -> LevelResult:
    result = LevelResult(streams)
    tag = f"[{streams}]"
    gateway, url, gateway_log = start_gateway(stack, streams, trace_gc)
    publish_window = (math.inf, math.inf)
    port = int(url.rsplit(":", 1)[1])
    loadgen: ManagedProcess | None = None
    lines: LineReader | None = None
    loadgen_log = (stack.logs / f"streaming-loadgen-{streams}.log").open("wb")
    try:
        await wait_healthy(gateway, port)
        publisher = EventPublisher(
            redis, stream_max_length=STREAM_MAX_LENGTH, ttl_seconds=TTL_SECONDS
        )

        logger.info("%s creating %d working tasks in Redis", tag, streams)
        tasks = [new_task() for _ in range(streams)]

        def create(task: Task) -> Callable[[], Awaitable[Any]]:
            return lambda: publisher.publish(TaskEvent.created(task), task)

        await bounded((create(task) for task in tasks), PUBLISH_CONCURRENCY)
        # The tasks live through the level: keep the collector's full passes here short, as their
        # pauses would delay publishes after their time stamp.
        gc.collect()
        gc.freeze()

        logger.info("%s warming the gateway up with %d streams", tag, WARMUP_STREAMS)
        await warm_up(publisher, HOST, port)
        await asyncio.sleep(SETTLE_SECONDS)
        result.baseline_rss_kib = rss_kib(gateway.pid)
        logger.info("%s gateway RSS baseline %.1f MiB", tag, result.baseline_rss_kib / 1024)

        ids_file = stack.work_dir / f"tasks-{streams}.txt"
        ids_file.write_text("".join(f"{task.id}\n" for task in tasks))
        results_file = stack.work_dir / f"clients-{streams}.json"
        args = [
            sys.executable,
            "-m",
            "bench.stream_clients",
            "--url",
            url,
            "--tasks",
            str(ids_file),
            "--results",
            str(results_file),
            "--concurrency",
            str(OPEN_CONCURRENCY),
        ]
        loadgen = ManagedProcess("load generator", args, env=child_env(stack), log=subprocess.PIPE)
        stack.processes.append(loadgen)
        lines = LineReader(loadgen, loadgen_log)
        await lines.start()
        logger.info("%s load generator (pid %d) opening %d streams", tag, loadgen.pid, streams)
        held, failed, seconds = await lines.expect(
            "HELD", 120 + streams / 50, [gateway, loadgen, stack.redis]
        )
        result.held = int(held)
        if not result.held:
            raise BenchError(f"no stream could be held; see {loadgen_log.name}")
        logger.info("%s %s streams held, %s failed to open, in %s s", tag, held, failed, seconds)
        await asyncio.sleep(SETTLE_SECONDS)
        result.held_rss_kib = rss_kib(gateway.pid)
        logger.info(
            "%s gateway RSS with the streams held %.1f MiB: %.1f KiB per stream",
            tag,
            result.held_rss_kib / 1024,
            result.rss_per_stream_kib,
        )

        logger.info(
            "%s publishing %.0f progress events/s for %.0f s round-robin over %d tasks",
            tag,
            rate,
            duration,
            streams,
        )
        progress = ProgressPublisher(publisher, tasks)
        meter = CpuMeter(
            {
                "gateway": gateway.pid,
                "load-gen": loadgen.pid,
                "publisher": os.getpid(),
                "redis": stack.redis.pid,
            }
        )
        publish_started = time.time()
        result.published, result.achieved_rate = await progress.run(rate, duration)
        publish_window = (publish_started, time.time())
        cpu = meter.percent()
        result.gateway_cpu, result.loadgen_cpu = cpu["gateway"], cpu["load-gen"]
        result.publish_failures = sum(progress.failures.values())
        logger.info(
            "%s published %d events (%.0f/s achieved, %d failed); CPU %% of one core: %s",
            tag,
            result.published,
            result.achieved_rate,
            result.publish_failures,
            ", ".join(f"{name} {value:.0f}" for name, value in cpu.items()),
        )
        for failure, count in progress.failures.most_common(5):
            logger.warning("%s %d publishes failed: %s", tag, count, failure)

        logger.info("%s completing the %d tasks", tag, streams)

        def complete(task: Task) -> Callable[[], Awaitable[Any]]:
            done = completed(task)
            return lambda: publisher.publish(TaskEvent.completed(done), done)

        await bounded((complete(task) for task in tasks), PUBLISH_CONCURRENCY)
        try:
            await lines.expect("DONE", 60 + streams / 100, [gateway, stack.redis])
        except BenchError as err:
            logger.warning("%s %s; stopping the load generator", tag, err)
            loadgen.process.terminate()
            await lines.expect("DONE", 30, [])
        clients: dict[str, Any] = orjson.loads(results_file.read_bytes())
        # A stream never held received nothing: its task's events count as lost.
        for published, received in zip(progress.published, clients["received"], strict=True):
            result.lost += max(0, published - received)
            result.duplicated += max(0, received - published)
        result.unfinished = sum(1 for final in clients["final"] if not final)
        result.latencies_ms = [value * 1000 for value in clients["latencies_s"]]
        log_latency_split(tag, result.latencies_ms, clients["from_redis_s"])
        logger.info(
            "%s streams closed: %d events lost, %d duplicated, %d streams without the final "
            "frame, %d out-of-order events; load generator used %.1f s CPU in all",
            tag,
            result.lost,
            result.duplicated,
            result.unfinished,
            clients["sequence_errors"],
            clients["cpu_seconds"],
        )
        for reason, count in {**clients["open_errors"], **clients["stream_errors"]}.items():
            logger.warning("%s %d streams: %s", tag, count, reason)
        if clients["connect_retries"]:
            logger.info("%s %d connection attempts retried", tag, clients["connect_retries"])
        return result
    finally:
        if lines is not None:
            lines.close()
        if loadgen is not None:
            loadgen.stop()
        loadgen_log.close()
        gateway.stop()
        gc.unfreeze()
        if trace_gc:
            log_gc_pauses(tag, gateway_log, publish_window)
        result.gateway_log_problems = gateway_log_problems(gateway_log)
        for problem in result.gateway_log_problems[:10]:
            logger.warning("%s gateway log: %s", tag, problem)
        with contextlib.suppress(Exception):
            await redis.flushdb()


async def run_levels(
    stack: Stack, levels: list[int], rate: float, duration: float, trace_gc: bool
) -> list[LevelResult]:
    redis = Redis.from_url(stack.redis_url, max_connections=PUBLISH_CONCURRENCY * 2)
    results = []
    try:
        for streams in levels:
            started = time.monotonic()
            result = await run_level(stack, streams, rate, duration, redis, trace_gc)
            results.append(result)
            print(markdown_row(result.row()), flush=True)
            logger.info("[%d] level done in %.0f s", streams, time.monotonic() - started)
    finally:
        await redis.aclose()
    return results


# ---- report -------------------------------------------------------------------------------------


def markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def table(results: list[LevelResult]) -> str:
    lines = [markdown_row(COLUMNS), markdown_row(["---:"] * len(COLUMNS))]
    lines += [markdown_row(result.row()) for result in results]
    return "\n".join(lines)


def preamble(rate: float, duration: float, argv: list[str]) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    return "\n".join(
        [
            "# Streaming benchmark: SSE fan-out of one gateway process",
            "",
            f"- Date: {datetime.now(UTC).isoformat(timespec='seconds')}",
            f"- Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, load average {load:.2f} at the end",
            f"- Command: `python -m bench.streaming {' '.join(argv)}`".replace("  ", " "),
            f"- Publish phase: {rate:,.0f} `task.progress` events/s in total for {duration:.0f} s, "
            "round-robin over the level's tasks, then one `task.completed` per task",
            f"- A fresh gateway process per level; its RSS baseline is taken after a "
            f"{WARMUP_STREAMS}-stream warm-up, before the streams open; RSS per stream = "
            "(RSS with the streams held - baseline) / streams held",
            "- Fan-out latency: publish (before the Redis call) -> the client reads the frame; "
            "CPU: % of one core over the publish phase",
            f"- Targets: {TARGETS}",
            "",
            "",
        ]
    )


# ---- main ---------------------------------------------------------------------------------------


def raise_fd_limit() -> int:
    """The soft RLIMIT_NOFILE up to the hard limit; the children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def run(levels: list[int], rate: float, duration: float, trace_gc: bool, argv: list[str]) -> int:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    LOGS_DIR.mkdir(exist_ok=True)
    limit = raise_fd_limit()
    if max(levels) + 1000 > limit:
        logger.warning(
            "open-file limit %d may be too low for %d streams (the gateway and the load "
            "generator each need a descriptor per stream)",
            limit,
            max(levels),
        )
    logger.info(
        "levels %s, %.0f events/s for %.0f s, open-file limit %d, logs in %s",
        levels,
        rate,
        duration,
        limit,
        LOGS_DIR.relative_to(ROOT),
    )
    started: list[ManagedProcess] = []
    began = time.monotonic()
    with stopping(started):
        with tempfile.TemporaryDirectory(prefix="bench-streaming-") as work_dir:
            stack = start_stack(started, LOGS_DIR, Path(work_dir))
            print(markdown_row(COLUMNS), flush=True)
            results = asyncio.run(run_levels(stack, levels, rate, duration, trace_gc))
        text = preamble(rate, duration, argv) + table(results) + "\n"
        path = RESULTS_DIR / "streaming.md"
        path.write_text(text)
        print("\n" + text, flush=True)
        print(
            f"Written to {path.relative_to(ROOT)} after {time.monotonic() - began:.0f} s; "
            f"logs in {LOGS_DIR.relative_to(ROOT)}/",
            flush=True,
        )
        return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.streaming", description=__doc__)
    parser.add_argument(
        "--streams",
        type=int,
        nargs="+",
        default=DEFAULT_STREAMS,
        help="concurrent streams per level (default: 1000 5000 10000)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        help=f"progress events/s in total (default {DEFAULT_RATE:.0f})",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=DEFAULT_DURATION,
        help=f"seconds of publishing per level (default {DEFAULT_DURATION:.0f})",
    )
    parser.add_argument(
        "--trace-gc",
        action="store_true",
        help="log the gateway's full garbage-collection passes (a sitecustomize probe)",
    )
    args = parser.parse_args(argv)
    if min(args.streams) < 1 or args.rate <= 0 or args.duration <= 0:
        parser.error("--streams must be 1 or more, --rate and --duration above 0")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    shown = [
        "--streams",
        *map(str, args.streams),
        "--rate",
        f"{args.rate:g}",
        "--duration",
        f"{args.duration:g}",
        *(["--trace-gc"] if args.trace_gc else []),
    ]
    exit_with(lambda: run(args.streams, args.rate, args.duration, args.trace_gc, shown))


if __name__ == "__main__":
    main()
