"""`python -m bench.soak [--streams N] [--duration S] [--chunks K] [--delay D] [--ramp-rate R]
[--heartbeat H] [--quick]`: N concurrent `message/stream` tasks through the whole stack for S seconds;
events lost, and the RSS of the gateway and the worker at the start and at the end.

Starts a Temporal dev server and a Redis on free loopback ports (or uses TEMPORAL_ADDRESS /
REDIS_URL), ONE gateway process and an echo worker (the harness's bare worker idles). The worker
heartbeats each running turn every H seconds (A2A_WORKER_HEARTBEAT_SECONDS, default 5: at the
worker's default of 1 s, 1,000 turns would be 1,000 heartbeat calls a second to a dev server on two
cores; a turn's heartbeat timeout is 10 s) and may run N + 20% activities at once
(A2A_WORKER_MAX_CONCURRENT_ACTIVITIES). A load generator of its own (`bench.soak_clients`, raw
asyncio on uvloop) starts streams at most R a second until N are in flight, and starts another
whenever one ends. Each task asks the echo agent for K artifact chunks D seconds apart (defaults 60
and 2 s: a task takes about two minutes), of a text that names the task and each chunk, so the
client checks that every chunk arrived once and in order, that the reassembled artifact equals the
text sent, and that exactly one final `status-update` (completed) ends the stream. R defaults to the
rate at which tasks then end, N / ((K - 1) D) (at most 20/s): starts and ends come at one steady rate
from the ramp on, about 8.5 tasks/s at the defaults. Once the first N streams are open the soak
runs S seconds (default 300); then no more start and those in flight finish.

Every `--sample-every` seconds, and at each phase boundary, it reads the RSS (VmRSS) and CPU time of
the gateway, the worker, Temporal and Redis from /proc. "Start" is when the first N streams are
open, "end" when the S seconds are over (both with N in flight), "after drain" once every stream has
closed. The bound, on the gateway and the worker: end RSS <= start x 1.25 + 20 MiB. After the drain
every task's event log in Redis is read back: its `task.progress` entries must be as many as the
artifact frames its client received.

`--quick`: 100 streams for 30 s, 10 chunks 1 s apart (a smoke run of about two minutes).

Writes `bench/results/soak.md` and `bench/results/soak.json`; logs, and the load generator's raw
figures (`clients.json`), in `bench/results/logs/soak/`. Every process it started is stopped on the
way out, Ctrl-C included. The exit code is 1 when an event was lost, duplicated, reordered or
malformed (after the report is written), never for a figure: an RSS bound not met reads "NOT met".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis
from temporalio.client import Client

from bench.harness import (
    HOST,
    NAMESPACE,
    RESULTS_DIR,
    ROOT,
    BenchError,
    Stack,
    exit_with,
    machine_info,
    percentile,
    start_stack,
    stopping,
    wait_ready,
)
from bench.streaming import (
    LineReader,
    cpu_seconds,
    gateway_log_problems,
    raise_fd_limit,
    rss_kib,
)
from gateway.devstack.processes import (
    TEMPORAL_DEV_SERVER,
    ManagedProcess,
    free_port,
    register_search_attributes,
)
from protocol import task_events_key

logger = logging.getLogger("bench.soak")

LOGS_DIR = RESULTS_DIR / "logs" / "soak"
# The processes whose RSS is bounded, and those only watched: Temporal keeps every workflow's
# history and Redis every task's event log (retained for days), so theirs grow by design.
BOUNDED = ("gateway", "echo worker")
WATCHED = (*BOUNDED, TEMPORAL_DEV_SERVER, "Redis")
# The names of the replicas started beside them (`--replicas`): watched too.
REPLICAS = ("gateway ", "echo worker ")
RSS_BOUND_FACTOR = 1.25
RSS_BOUND_SLACK_MIB = 20
RSS_BOUND = f"end <= {RSS_BOUND_FACTOR:g} x start + {RSS_BOUND_SLACK_MIB} MiB"
# The issue-18 targets of a soak at 1,000 streams.
TASK_FRAME_P99_TARGET_MS = 250.0
TEMPORAL_CPU_TARGET_PERCENT = 50.0
CANCEL_P50_TARGET_MS = 100.0
CANCEL_P99_TARGET_MS = 500.0
# The worker's default A2A_WORKER_HEARTBEAT_SECONDS.
WORKER_HEARTBEAT_SECONDS = 30.0
# Task starts a second the stack took on two cores without delaying them (a 300-stream ramp).
MAX_START_RATE = 20.0
# Beyond the ramp at its nominal rate, and beyond a stream's own time, for the stack to catch up.
RAMP_SLACK_SECONDS = 120.0
STREAM_SLACK_SECONDS = 120.0
PHASE_SLACK_SECONDS = 60.0
# Reading every task's event log back: XRANGE calls per pipeline.
CROSS_CHECK_BATCH = 200
# After the drain, before the last RSS reading: the gateway and worker finish their cleanup.
SETTLE_SECONDS = 2.0


@dataclass
class Options:
    streams: int = 1_000
    duration: float = 300.0
    chunks: int = 60
    delay: float = 2.0
    # Stream starts a second at most; None: the rate at which tasks end once all are in flight
    # (N / a task's time, at most MAX_START_RATE), so the stack sees one steady rate of starts and
    # ends from the ramp on, not waves of them.
    ramp_rate: float | None = None
    # The worker's A2A_WORKER_HEARTBEAT_SECONDS; None: its default.
    heartbeat: float | None = None
    sample_every: float = 10.0
    cancel_every: float = 1.0
    # Gateways and echo workers; with more than one, streams are spread over the gateways, a dropped
    # stream resumes on the next one, and `kill_at` seconds into the soak one gateway and one worker
    # are killed (SIGKILL).
    replicas: int = 1
    kill_at: float | None = None

    @property
    def task_seconds(self) -> float:
        """How long the agent takes over one task, at least."""
        return (self.chunks - 1) * self.delay

    @property
    def start_rate(self) -> float:
        if self.ramp_rate is not None:
            return self.ramp_rate
        return min(MAX_START_RATE, self.streams / max(self.task_seconds, 1.0))

    @property
    def stream_timeout(self) -> float:
        if self.kill_at is None:
            return self.task_seconds + STREAM_SLACK_SECONDS
        # A turn of the killed worker starts again on another, once its heartbeat has timed out.
        return 2 * self.task_seconds + self.heartbeat_timeout + STREAM_SLACK_SECONDS

    @property
    def heartbeat_timeout(self) -> float:
        """The gateway's A2A_GATEWAY_AGENT_HEARTBEAT_TIMEOUT_SECONDS: three heartbeats."""
        return 3 * (self.heartbeat if self.heartbeat is not None else WORKER_HEARTBEAT_SECONDS)

    def gateway_env(self) -> dict[str, str]:
        return {"A2A_GATEWAY_AGENT_HEARTBEAT_TIMEOUT_SECONDS": f"{self.heartbeat_timeout:g}"}

    @property
    def max_activities(self) -> int:
        # A turn's activity is still finishing when its stream's final frame has started another.
        return self.streams + max(100, self.streams // 5)

    def worker_env(self) -> dict[str, str]:
        env = {"A2A_WORKER_MAX_CONCURRENT_ACTIVITIES": str(self.max_activities)}
        if self.heartbeat is not None:
            env["A2A_WORKER_HEARTBEAT_SECONDS"] = f"{self.heartbeat:g}"
        return env


# ---- figures ------------------------------------------------------------------------------------


def rss_bound_kib(start_kib: int) -> int:
    """The most RSS a bounded process may have at the end, given its RSS at the start."""
    return math.floor(start_kib * RSS_BOUND_FACTOR) + RSS_BOUND_SLACK_MIB * 1024


def trend_mib_per_minute(points: list[tuple[float, int]]) -> float | None:
    """The least-squares slope of (seconds, KiB) points, in MiB a minute; None with fewer than two
    distinct times."""
    if len(points) < 2:
        return None
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    slope = sum((t - mean_t) * (v - mean_v) for t, v in points) / spread
    return slope * 60 / 1024


def quantiles(values: Iterable[float]) -> dict[str, float | int | None]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    return {
        "n": len(ordered),
        "p50": percentile(ordered, 50),
        "p99": percentile(ordered, 99),
        "max": ordered[-1],
    }


def event_figures(clients: dict[str, Any]) -> dict[str, int]:
    """Expected and received per task whose Task frame arrived: K artifact chunks and one final
    status-update. `lost` counts both kinds; `duplicated` chunks and final frames alike."""
    # Streams still open when a run is stopped early have no record: nothing is expected of them.
    opened, chunks = len(clients["tasks"]), clients["chunks"]
    finals = clients.get("finals", 0)
    final_streams = clients.get("final_streams", 0)
    chunks_received = clients.get("chunks_received", 0)
    return {
        "chunks_expected": opened * chunks,
        "chunks_received": chunks_received,
        "chunks_lost": opened * chunks - chunks_received,
        "finals_expected": opened,
        "finals_received": final_streams,
        "finals_missing": opened - final_streams,
        "expected": opened * (chunks + 1),
        "received": chunks_received + final_streams,
        "lost": opened * chunks - chunks_received + opened - final_streams,
        "duplicated": clients.get("duplicated", 0) + finals - final_streams,
        "out_of_order": clients.get("out_of_order", 0),
        "malformed": clients.get("bad_frames", 0),
        "after_final": clients.get("after_final", 0),
        "wrong_final_state": clients.get("wrong_final_state", 0),
        # A retried turn starts its artifact again; the chunks it had sent are sent again.
        "restarts": clients.get("restarts", 0),
        "resent": clients.get("resent", 0),
    }


def wrong_answers(figures: dict[str, Any]) -> list[str]:
    """What makes the run a failure: an event lost, duplicated, reordered or malformed, or the
    Redis log disagreeing with the client."""
    events, redis = figures["events"], figures["redis"]
    checks = [
        ("events lost", events["lost"]),
        ("events duplicated", events["duplicated"]),
        ("chunks out of order", events["out_of_order"]),
        ("malformed frames", events["malformed"]),
        ("frames after the final one", events["after_final"]),
        ("streams ending in a state other than completed", events["wrong_final_state"]),
        ("task logs in Redis that differ from what the client received", redis["log_ne_client"]),
        (
            "cancel probes not ended by exactly one canceled frame",
            figures["cancel_probes"]["failed"],
        ),
    ]
    return [f"{count:,} {what}" for what, count in checks if count]


# ---- the run ------------------------------------------------------------------------------------


class Monitor:
    """RSS and CPU time of some processes, every `every` seconds and at each phase boundary."""

    def __init__(self, pids: dict[str, int], every: float) -> None:
        self._pids = pids
        self._every = every
        self.began = time.monotonic()
        self.phase = "ramp"
        self.samples: list[dict[str, Any]] = []
        self.marks: dict[str, dict[str, Any]] = {}

    def sample(self) -> dict[str, Any]:
        rss: dict[str, int] = {}
        cpu: dict[str, float] = {}
        for name, pid in self._pids.items():
            try:
                rss[name] = rss_kib(pid)
                cpu[name] = cpu_seconds(pid)
            except (OSError, BenchError):
                continue  # it has exited: the driver's next check says so
        entry = {
            "t": round(time.monotonic() - self.began, 1),
            "phase": self.phase,
            "rss_kib": rss,
            "cpu_s": cpu,
        }
        self.samples.append(entry)
        return entry

    def mark(self, name: str, next_phase: str) -> dict[str, Any]:
        entry = self.sample()
        entry["mark"] = name
        self.marks[name] = entry
        self.phase = next_phase
        return entry

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            self.sample()

    def process_figures(self) -> dict[str, dict[str, Any]]:
        start, end, drained = self.marks["start"], self.marks["end"], self.marks["drained"]
        seconds = end["t"] - start["t"]
        out: dict[str, dict[str, Any]] = {}
        for name in self._pids:
            if name not in start["rss_kib"] or name not in drained["rss_kib"]:
                continue
            soak = [
                (s["t"], s["rss_kib"][name])
                for s in self.samples
                if start["t"] <= s["t"] <= end["t"] and name in s["rss_kib"]
            ]
            figures: dict[str, Any] = {
                "rss_start_kib": start["rss_kib"][name],
                "rss_end_kib": end["rss_kib"][name],
                "rss_drained_kib": drained["rss_kib"][name],
                "rss_max_kib": max(s["rss_kib"].get(name, 0) for s in self.samples),
                "trend_mib_per_min": trend_mib_per_minute(soak),
                "cpu_percent_soak": 100 * (end["cpu_s"][name] - start["cpu_s"][name]) / seconds
                if seconds > 0
                else None,
                "cpu_seconds": drained["cpu_s"][name],
            }
            if name in BOUNDED:
                bound = rss_bound_kib(figures["rss_start_kib"])
                figures["rss_bound_kib"] = bound
                figures["within_bound"] = figures["rss_end_kib"] <= bound
            out[name] = figures
        return out


async def prepare(stack: Stack, urls: list[str]) -> None:
    client = await Client.connect(stack.temporal_address, namespace=NAMESPACE)
    if stack.temporal_reused:
        added = await register_search_attributes(client, NAMESPACE)
        if added:
            logger.info("registered search attributes %s", added)
    logger.info("waiting for the gateways and the workers")
    for url in urls:
        async with httpx.AsyncClient(base_url=url) as http:
            await wait_ready(stack, http, client)


def loadgen_args(stack: Stack, options: Options, results: Path, urls: list[str]) -> list[str]:
    resume = ["--resume"] if len(urls) > 1 else []
    return [
        sys.executable,
        "-m",
        "bench.soak_clients",
        *resume,
        "--url",
        ",".join(urls),
        "--results",
        str(results),
        "--streams",
        str(options.streams),
        "--duration",
        f"{options.duration:g}",
        "--chunks",
        str(options.chunks),
        "--delay",
        f"{options.delay:g}",
        "--ramp-rate",
        f"{options.start_rate:g}",
        "--stream-timeout",
        f"{options.stream_timeout:g}",
        "--cancel-every",
        f"{options.cancel_every:g}",
    ]


async def kill_replicas(
    stack: Stack, monitor: Monitor, after: float, kills: dict[str, Any]
) -> None:
    """`after` seconds into the soak, SIGKILL the last gateway and the last echo worker started."""
    await asyncio.sleep(after)
    victims = [
        next(p for p in reversed(stack.processes) if p.name.startswith(prefix))
        for prefix in ("gateway", "echo worker")
    ]
    for process in victims:
        stack.processes.remove(process)
        process.kill()
    kills["at_s"] = round(time.monotonic() - monitor.began, 1)
    kills["killed"] = [process.name for process in victims]
    logger.info("killed the %s (SIGKILL)", " and the ".join(kills["killed"]))


async def drive(
    stack: Stack, options: Options, monitor: Monitor, urls: list[str], kills: dict[str, Any]
) -> dict[str, Any]:
    """Run the load generator through its phases, marking each; its results."""
    # Every figure the load generator took, task ids and latencies included, kept with the logs.
    results = LOGS_DIR / "clients.json"
    log = (LOGS_DIR / "load-generator.log").open("wb")
    loadgen = ManagedProcess(
        "load generator",
        loadgen_args(stack, options, results, urls),
        env=stack.env,
        log=subprocess.PIPE,
    )
    stack.processes.append(loadgen)

    def progress(fields: list[str]) -> None:
        rss = monitor.samples[-1]["rss_kib"] if monitor.samples else {}
        logger.info(
            "  %s in flight, %s started, %s completed, %s failed; RSS MiB %s",
            *fields[:4],
            ", ".join(f"{name} {kib / 1024:.0f}" for name, kib in rss.items()),
        )

    lines = LineReader(loadgen, log, progress)
    sampling = asyncio.create_task(monitor.run())
    killing: asyncio.Task[None] | None = None
    try:
        await lines.start()
        logger.info(
            "ramping up to %d streams at %g/s (load generator pid %d)",
            options.streams,
            options.start_rate,
            loadgen.pid,
        )
        ramp_within = 3 * options.streams / options.start_rate + RAMP_SLACK_SECONDS
        in_flight, seconds = await lines.expect("RAMPED", ramp_within, stack.processes)
        start = monitor.mark("start", "soak")
        logger.info(
            "%s streams in flight after a %s s ramp; RSS at the start (MiB): %s",
            in_flight,
            seconds,
            ", ".join(f"{name} {kib / 1024:.0f}" for name, kib in start["rss_kib"].items()),
        )
        if int(in_flight) < options.streams:
            logger.warning(
                "only %s of %d streams in flight at the end of the ramp: tasks end sooner than "
                "the ramp (raise --chunks or --delay, or --ramp-rate)",
                in_flight,
                options.streams,
            )
        if options.kill_at is not None:
            killing = asyncio.create_task(kill_replicas(stack, monitor, options.kill_at, kills))
        (in_flight,) = await lines.expect(
            "DRAINING", options.duration + PHASE_SLACK_SECONDS, stack.processes
        )
        monitor.mark("end", "drain")
        logger.info("soak over; draining the %s streams in flight", in_flight)
        # The load generator exits right after DONE, maybe before its line is read.
        others = [process for process in stack.processes if process is not loadgen]
        await lines.expect("DONE", options.stream_timeout + PHASE_SLACK_SECONDS, others)
        await asyncio.sleep(SETTLE_SECONDS)
        monitor.mark("drained", "done")
    finally:
        sampling.cancel()
        if killing is not None:
            killing.cancel()
        lines.close()
        loadgen.stop()
        stack.processes.remove(loadgen)
        log.close()
    clients: dict[str, Any] = orjson.loads(results.read_bytes())
    return clients


async def cross_check(redis_url: str, tasks: list[list[Any]]) -> dict[str, Any]:
    """Each task's event log in Redis against what the client received: as many `task.progress`
    entries as artifact frames (retried turns included)."""
    redis = Redis.from_url(redis_url)
    checked = log_ne_client = not_received = 0
    first: str | None = None
    try:
        for start in range(0, len(tasks), CROSS_CHECK_BATCH):
            batch = tasks[start : start + CROSS_CHECK_BATCH]
            async with redis.pipeline(transaction=False) as pipe:
                for task_id, _ in batch:
                    pipe.xrange(task_events_key(task_id))
                replies = await pipe.execute()
            for (task_id, received), entries in zip(batch, replies, strict=True):
                checked += 1
                types = Counter(fields.get(b"type") for _, fields in entries)
                logged = types[b"task.progress"]
                if logged != received:
                    log_ne_client += 1
                    not_received += max(0, logged - received)
                    if first is None:
                        first = f"task {task_id}: {logged} in the log, {received} received"
    finally:
        await redis.aclose()
    return {
        "checked": checked,
        "log_ne_client": log_ne_client,
        "in_log_not_received": not_received,
        "first": first,
    }


def open_latencies(clients: dict[str, Any]) -> dict[str, dict[str, float | int | None]]:
    """Request sent -> Task frame, of the streams started during the ramp and during the soak; and
    for the latter, the part after the worker appended `task.created` (the gateway's share)."""
    ramped = clients["marks"].get("ramped", {}).get("time", math.inf)
    soaked = clients["marks"].get("soaked", {}).get("time", math.inf)
    ramp = [(ms, lag) for sent, ms, lag in clients["opens"] if sent < ramped]
    soak = [(ms, lag) for sent, ms, lag in clients["opens"] if ramped <= sent < soaked]
    return {
        "open_ramp": quantiles(ms for ms, _ in ramp),
        "open_soak": quantiles(ms for ms, _ in soak),
        "open_soak_after_append": quantiles(lag for _, lag in soak if lag is not None),
    }


def cancel_figures(probes: list[list[Any]]) -> dict[str, Any]:
    """The cancel probes: `tasks/cancel` sent -> the stream's final frame, and -> its answer."""
    good = [(final, answer) for final, answer, problem in probes if problem is None]
    problems = Counter(str(problem)[:100] for _, _, problem in probes if problem is not None)
    return {
        "probes": len(probes),
        "failed": sum(problems.values()),
        "problems": dict(problems),
        "to_final_frame": quantiles(final for final, _ in good),
        "to_answer": quantiles(answer for _, answer in good),
    }


def targets(figures: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """Each issue-18 target of the soak: what, the measured figure, met (None: not measured)."""
    soak = figures["latency_ms"]["open_soak"]
    temporal = figures["processes"].get(TEMPORAL_DEV_SERVER, {}).get("cpu_percent_soak")
    cancel = figures["cancel_probes"]["to_final_frame"]
    lost = figures["events"]["lost"]

    def at_most(value: float | None, bound: float) -> bool | None:
        return None if value is None else value <= bound

    replicas = figures["replicas"]
    several: list[tuple[str, str, bool | None]] = []
    if replicas["gateways"] > 1:
        streams = figures["streams"]
        unfinished = streams["failed_to_open"] + streams["broken"] + streams["wrong"]
        several = [
            (
                f"{replicas['gateways']} gateways, {replicas['workers']} workers, "
                f"{' and '.join(replicas.get('killed', [])) or 'nothing'} killed: every stream "
                "finished",
                f"{unfinished:,} did not ({replicas['streams_resumed']:,} resumed on another "
                "gateway)",
                unfinished == 0 and bool(replicas.get("killed")),
            )
        ]
    return [
        *several,
        ("events lost = 0", f"{lost:,}", lost == 0),
        (
            f"Task frame p99 <= {TASK_FRAME_P99_TARGET_MS:g} ms (streams started in the soak)",
            f"{_n(soak['p99'], 1)} ms",
            at_most(soak["p99"], TASK_FRAME_P99_TARGET_MS),
        ),
        (
            f"Temporal dev server < {TEMPORAL_CPU_TARGET_PERCENT:g}% of a core",
            f"{_n(temporal, 1)}%",
            None if temporal is None else temporal < TEMPORAL_CPU_TARGET_PERCENT,
        ),
        (
            f"cancel -> canceled frame p50 <= {CANCEL_P50_TARGET_MS:g} ms",
            f"{_n(cancel['p50'], 1)} ms",
            at_most(cancel["p50"], CANCEL_P50_TARGET_MS),
        ),
        (
            f"cancel -> canceled frame p99 <= {CANCEL_P99_TARGET_MS:g} ms",
            f"{_n(cancel['p99'], 1)} ms",
            at_most(cancel["p99"], CANCEL_P99_TARGET_MS),
        ),
    ]


def rates(clients: dict[str, Any]) -> dict[str, float | None]:
    """Per second over the soak proper (from the ramp's end to the drain's start)."""
    marks = clients["marks"]
    if "ramped" not in marks or "soaked" not in marks:
        return {"tasks_completed_per_s": None, "tasks_started_per_s": None, "events_per_s": None}
    ramped, soaked = marks["ramped"], marks["soaked"]
    seconds = soaked["time"] - ramped["time"]
    return {
        "tasks_completed_per_s": (soaked["completed"] - ramped["completed"]) / seconds,
        "tasks_started_per_s": (soaked["started"] - ramped["started"]) / seconds,
        "events_per_s": (soaked["chunk_frames"] - ramped["chunk_frames"]) / seconds,
    }


async def soak(stack: Stack, options: Options, urls: list[str]) -> dict[str, Any]:
    await prepare(stack, urls)
    pids = {
        process.name: process.pid
        for process in stack.processes
        if process.name in WATCHED or process.name.startswith(REPLICAS)
    }
    monitor = Monitor(pids, options.sample_every)
    kills: dict[str, Any] = {}
    clients = await drive(stack, options, monitor, urls, kills)
    logger.info("reading %d task logs back from Redis", len(clients["tasks"]))
    redis = await cross_check(stack.redis_url, clients["tasks"])
    return {
        "streams": {
            key: clients[key]
            for key in (
                "started",
                "opened",
                "completed",
                "failed_to_open",
                "turned_away",
                "broken",
                "wrong",
                "unfinished",
                "open_errors",
                "stream_errors",
                "first_error",
                "in_flight",
                "ramp_seconds",
            )
        },
        "events": event_figures(clients),
        "redis": redis,
        "rates": rates(clients),
        "latency_ms": {
            "publish_to_receive": quantiles(clients["latencies_ms"]),
            **open_latencies(clients),
        },
        "cancel_probes": cancel_figures(clients["cancel_probes"]),
        "replicas": {
            "gateways": len(urls),
            "workers": options.replicas,
            **kills,
            "streams_resumed": clients["resumed"],
            "resumes": clients.get("resumes", 0),
        },
        "processes": monitor.process_figures(),
        "load_generator": {
            "cpu_seconds": clients["cpu_seconds"],
            "cpu_percent": 100 * clients["cpu_seconds"] / clients["wall_seconds"],
            "max_rss_kib": clients["max_rss_kib"],
        },
        "samples": monitor.samples,
    }


# ---- report -------------------------------------------------------------------------------------


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _n(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:,.1f}"


def _errors(counts: dict[str, int]) -> str:
    return "; ".join(f"{n:,} x {reason}" for reason, n in counts.items())


def _spread(figures: dict[str, Any]) -> str:
    return " / ".join(_n(figures[q], 1) for q in ("p50", "p99", "max"))


def _event_rows(figures: dict[str, Any]) -> list[str]:
    streams, events, redis = figures["streams"], figures["events"], figures["redis"]
    flight = streams["in_flight"]
    publish = figures["latency_ms"]["publish_to_receive"]
    ramp, soak = figures["latency_ms"]["open_ramp"], figures["latency_ms"]["open_soak"]
    after_append = figures["latency_ms"]["open_soak_after_append"]
    rate = figures["rates"]
    cancels = figures["cancel_probes"]
    lost = events["lost"]
    rows = [
        ("tasks started", _n(streams["started"])),
        ("tasks completed (every check passed)", _n(streams["completed"])),
        ("streams failed to open (no task)", _n(streams["failed_to_open"])),
        ("  of which turned away (-32000 server busy)", _n(streams["turned_away"])),
        (
            "streams broken (no final frame) / wrong",
            f"{streams['broken']:,} / {streams['wrong']:,}",
        ),
        (
            "streams in flight during the soak, min / mean / max",
            f"{flight['min']:,} / {flight['mean']:,.0f} / {flight['max']:,}",
        ),
        ("events expected (K chunks + 1 final per task)", _n(events["expected"])),
        ("events received", _n(events["received"])),
        ("**events lost**", f"**{lost:,}** ({'met' if lost == 0 else 'NOT met'}: target 0)"),
        (
            "artifact chunks lost / final frames missing",
            f"{events['chunks_lost']:,} / {events['finals_missing']:,}",
        ),
        (
            "duplicated / out of order / malformed",
            f"{events['duplicated']:,} / {events['out_of_order']:,} / {events['malformed']:,}",
        ),
        (
            "turns retried (artifact restarted) / chunks sent again",
            f"{events['restarts']:,} / {events['resent']:,}",
        ),
        (
            "Redis task logs checked / differing from the client",
            f"{redis['checked']:,} / {redis['log_ne_client']:,}",
        ),
        ("tasks completed / s (soak)", _n(rate["tasks_completed_per_s"], 1)),
        ("artifact events received / s (soak)", _n(rate["events_per_s"], 0)),
        ("publish (Redis) -> receive ms, p50 / p99 / max", _spread(publish)),
        ("request -> Task frame ms, streams started in the ramp", _spread(ramp)),
        ("request -> Task frame ms, streams started in the soak", _spread(soak)),
        ("  of which `task.created` in Redis -> Task frame ms", _spread(after_append)),
        (
            "cancel probes (1 per cancel interval, beside the N) / failed",
            f"{cancels['probes']:,} / {cancels['failed']:,}",
        ),
        (
            "tasks/cancel sent -> canceled frame ms, p50 / p99 / max",
            _spread(cancels["to_final_frame"]),
        ),
        ("tasks/cancel sent -> its answer ms, p50 / p99 / max", _spread(cancels["to_answer"])),
    ]
    return ["| | |", "| --- | ---: |", *(_row([name, value]) for name, value in rows)]


def _process_rows(figures: dict[str, Any]) -> list[str]:
    lines = [
        _row(
            [
                "process",
                "RSS start MiB",
                "end MiB",
                "bound MiB",
                "bound",
                "after drain MiB",
                "max MiB",
                "trend MiB/min (soak)",
                "CPU % of a core (soak)",
                "CPU s (all)",
            ]
        ),
        _row(["---", *["---:"] * 9]),
    ]
    for name, row in figures["processes"].items():
        bounded = "rss_bound_kib" in row
        lines.append(
            _row(
                [
                    name,
                    _mib(row["rss_start_kib"]),
                    _mib(row["rss_end_kib"]),
                    _mib(row["rss_bound_kib"]) if bounded else "-",
                    ("met" if row["within_bound"] else "NOT met") if bounded else "-",
                    _mib(row["rss_drained_kib"]),
                    _mib(row["rss_max_kib"]),
                    _n(row["trend_mib_per_min"], 2),
                    _n(row["cpu_percent_soak"]),
                    _n(row["cpu_seconds"], 1),
                ]
            )
        )
    loadgen = figures["load_generator"]
    lines.append(
        _row(
            [
                "load generator",
                "-",
                "-",
                "-",
                "-",
                "-",
                _mib(loadgen["max_rss_kib"]),
                "-",
                f"{loadgen['cpu_percent']:.0f} (whole run)",
                _n(loadgen["cpu_seconds"], 1),
            ]
        )
    )
    return lines


def _notes(figures: dict[str, Any]) -> list[str]:
    streams, redis = figures["streams"], figures["redis"]
    notes = []
    if streams["first_error"]:
        notes.append(f"- First stream error: {streams['first_error']}")
    if streams["open_errors"]:
        notes.append(f"- Streams that failed to open: {_errors(streams['open_errors'])}")
    if streams["stream_errors"]:
        notes.append(f"- Streams broken or wrong: {_errors(streams['stream_errors'])}")
    if streams["unfinished"]:
        notes.append(f"- {streams['unfinished']:,} streams were still open when the run stopped")
    if redis["first"]:
        notes.append(f"- Redis cross-check, first difference: {redis['first']}")
    for name, problems in figures["log_problems"].items():
        for problem in problems[:5]:
            notes.append(f"- {name} log: {problem}")
    return notes or ["- No stream failed; no warning or error in the gateway's and worker's logs."]


def render_markdown(figures: dict[str, Any]) -> str:
    settings, machine = figures["settings"], figures["machine"]
    load = "n/a" if machine["load_average_1m"] is None else f"{machine['load_average_1m']:.2f}"
    bounds = [row.get("within_bound") for row in figures["processes"].values()]
    verdict = "met" if all(b for b in bounds if b is not None) else "NOT met"
    beat = settings["worker_heartbeat_s"]
    heartbeat = "at the worker's default, every 30 s" if beat is None else f"every {beat:g} s"
    lines = [
        f"# Soak: {settings['streams']:,} concurrent `message/stream` tasks for "
        f"{settings['duration_s']:g} s",
        "",
        f"- Date: {figures['timestamp']}; command: `{figures['command']}`",
        f"- Machine: {machine['cpu_count']} CPUs, Python {machine['python']}, temporalio "
        f"{machine['temporalio']}, load average {load} at the end; Temporal: {figures['temporal']}",
        f"- Each task: the echo agent sends {settings['chunks']} chunks {settings['delay_s']:g} s "
        f"apart (about {settings['task_s']:g} s a task); streams start at most "
        f"{settings['start_rate']:.3g}/s; the soak proper starts once {settings['streams']:,} "
        f"streams are open (after a {figures['streams']['ramp_seconds']:.0f} s ramp)",
        f"- Worker: heartbeats {heartbeat} (A2A_WORKER_HEARTBEAT_SECONDS), up to "
        f"{settings['worker_max_concurrent_activities']:,} "
        "concurrent activities; "
        + (
            "one gateway process"
            if settings["replicas"] == 1
            else f"{settings['replicas']} gateways and {settings['replicas']} workers, the last of "
            f"each killed {settings['kill_at_s']:g} s into the soak (SIGKILL); heartbeat timeout "
            f"{settings['gateway_heartbeat_timeout_s']:g} s"
        ),
        f"- RSS start: the ramp's end; end: the soak's end (both with the streams in flight); "
        f"bound on the gateway and the worker: {RSS_BOUND} ({verdict})",
        "",
        "## Targets (issue 18; with --replicas, issue 19)",
        "",
        "| target | measured | |",
        "| --- | ---: | --- |",
        *(
            _row([what, value, "n/a" if met is None else ("met" if met else "**NOT met**")])
            for what, value, met in targets(figures)
        ),
        "",
        "## Streams and events",
        "",
        *_event_rows(figures),
        "",
        "## Memory and CPU",
        "",
        *_process_rows(figures),
        "",
        "Temporal and Redis are not bounded: they keep every workflow's history and every "
        "task's event log. Latencies from a frame's `id:` are in whole milliseconds of Redis's "
        "clock.",
        "",
        "## Notes",
        "",
        *_notes(figures),
    ]
    return "\n".join(lines) + "\n"


# ---- main ---------------------------------------------------------------------------------------


def run(options: Options, command: str) -> int:
    LOGS_DIR.mkdir(parents=True, exist_ok=True)
    limit = raise_fd_limit()
    if options.streams + 1_000 > limit:
        logger.warning("open-file limit %d may be too low for %d streams", limit, options.streams)
    logger.info(
        "%d streams for %g s after the ramp; %d chunks %g s apart; logs in %s",
        options.streams,
        options.duration,
        options.chunks,
        options.delay,
        LOGS_DIR.relative_to(ROOT),
    )
    started: list[ManagedProcess] = []
    with stopping(started):
        with tempfile.TemporaryDirectory(prefix="bench-soak-") as data_dir:
            stack = start_stack(
                started,
                LOGS_DIR,
                Path(data_dir),
                worker_env=options.worker_env(),
                gateway_env=options.gateway_env(),
            )
            urls = [stack.gateway_url]
            for number in range(2, options.replicas + 1):
                urls.append(stack.start_gateway(f"gateway {number}", free_port(HOST)))
                stack.start_worker(f"echo worker {number}")
            figures = asyncio.run(soak(stack, options, urls))
        figures["log_problems"] = {
            name: gateway_log_problems(LOGS_DIR / f"{name.replace(' ', '-')}.log")
            for name in BOUNDED
        }
    figures = {
        "benchmark": "soak",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine_info(),
        "temporal": "reused " + stack.temporal_address if stack.temporal_reused else "dev server",
        "settings": {
            "streams": options.streams,
            "duration_s": options.duration,
            "chunks": options.chunks,
            "delay_s": options.delay,
            "start_rate": options.start_rate,
            "sample_every_s": options.sample_every,
            "task_s": options.task_seconds,
            "stream_timeout_s": options.stream_timeout,
            "worker_heartbeat_s": options.heartbeat,
            "cancel_every_s": options.cancel_every,
            "replicas": options.replicas,
            "kill_at_s": options.kill_at,
            "gateway_heartbeat_timeout_s": options.heartbeat_timeout,
            "worker_max_concurrent_activities": options.max_activities,
            "rss_bound": RSS_BOUND,
        },
        **figures,
    }
    (RESULTS_DIR / "soak.json").write_text(json.dumps(figures, indent=2) + "\n")
    markdown = render_markdown(figures)
    (RESULTS_DIR / "soak.md").write_text(markdown)
    print(markdown, flush=True)
    print(
        f"Figures: {RESULTS_DIR.relative_to(ROOT)}/soak.*   Logs: {LOGS_DIR.relative_to(ROOT)}/",
        flush=True,
    )
    problems = wrong_answers(figures)
    if problems:
        raise BenchError("; ".join(problems) + " (see bench/results/soak.md)")
    return 0


def main(argv: list[str] | None = None) -> None:
    defaults = Options()
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument(
        "--streams", type=int, default=defaults.streams, help="tasks in flight (default 1000)"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=defaults.duration,
        help="seconds of soak once the streams are open (default 300)",
    )
    parser.add_argument(
        "--chunks", type=int, default=defaults.chunks, help="artifact chunks per task (default 60)"
    )
    parser.add_argument(
        "--delay", type=float, default=defaults.delay, help="seconds between chunks (default 2)"
    )
    parser.add_argument(
        "--ramp-rate",
        type=float,
        default=defaults.ramp_rate,
        help="stream starts per second at most (default: streams / a task's time, at most 20)",
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=defaults.heartbeat,
        help="the worker's A2A_WORKER_HEARTBEAT_SECONDS (default: the worker's, 30)",
    )
    parser.add_argument(
        "--cancel-every",
        type=float,
        default=defaults.cancel_every,
        help="seconds between cancel probes during the soak (default 1; 0: none)",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=defaults.replicas,
        help="gateways and echo workers (default 1); streams are spread over the gateways",
    )
    parser.add_argument(
        "--kill-at",
        type=float,
        default=None,
        help="with --replicas 2 or more: seconds into the soak at which the last gateway and the "
        "last worker are killed (default: half the duration)",
    )
    parser.add_argument(
        "--sample-every",
        type=float,
        default=defaults.sample_every,
        help="seconds between RSS readings (default 10)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 100 streams, 30 s, 10 chunks 1 s apart",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.streams, args.duration, args.chunks, args.delay = 100, 30.0, 10, 1.0
        args.sample_every = min(args.sample_every, 5.0)
    options = Options(
        streams=args.streams,
        duration=args.duration,
        chunks=args.chunks,
        delay=args.delay,
        ramp_rate=args.ramp_rate,
        heartbeat=args.heartbeat,
        sample_every=args.sample_every,
        cancel_every=args.cancel_every,
        replicas=args.replicas,
        kill_at=(
            (args.kill_at if args.kill_at is not None else args.duration / 2)
            if args.replicas > 1
            else None
        ),
    )
    if (
        options.streams < 1
        or not 1 <= options.chunks <= 10_000
        or min(options.duration, options.start_rate, options.sample_every) <= 0
        or options.delay < 0
        or options.cancel_every < 0
        or (options.heartbeat is not None and options.heartbeat <= 0)
        or options.replicas < 1
        or (options.kill_at is not None and not 0 <= options.kill_at < options.duration)
    ):
        parser.error(
            "--streams and --replicas must be 1 or more, --chunks 1 to 10000, --delay and "
            "--cancel-every 0 or more, --kill-at within the duration, the others above 0"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    shown = " ".join(["python -m bench.soak", *(argv if argv is not None else sys.argv[1:])])
    exit_with(lambda: run(options, shown))


if __name__ == "__main__":
    main()
