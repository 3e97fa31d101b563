"""`python -m bench.latency [-n N] [--warmup W]`: latency of a blocking `message/send` through the
whole stack (HTTP -> gateway -> Temporal -> echo worker -> Redis -> back), against a bare Temporal
round trip on the same server (a workflow that runs one activity; `bench.bare`), each from this
process to a worker process of its own.

Starts a Temporal dev server and a Redis on free loopback ports (or uses TEMPORAL_ADDRESS /
REDIS_URL), a gateway, an echo worker and a bare worker; after W warm-up requests of each kind,
measures N of each, one at a time, the two kinds taking turns; prints a table and writes
`bench/results/latency.json`. Every process it started is stopped on the way out, Ctrl-C included.
The exit code reflects failures only, never the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import temporalio
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from bench.bare import BareWorkflow
from bench.harness import BenchError, exit_with, open_log, percentile, stopping
from gateway.devstack import (
    ManagedProcess,
    free_port,
    register_search_attributes,
    start_redis,
    start_temporal,
)

logger = logging.getLogger("bench.latency")

HOST = "127.0.0.1"
NAMESPACE = "default"
ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
PYCACHE_DIR = RESULTS_DIR / "pycache"
GATEWAY_LABEL = "gateway message/send"
BARE_LABEL = "bare workflow + 1 activity"
# Deadline on one measured request, and on the stack becoming ready.
REQUEST_TIMEOUT = 60.0
READY_TIMEOUT = 60.0


@dataclass
class Stack:
    temporal_address: str
    redis_url: str
    gateway_url: str
    echo_queue: str
    bare_queue: str
    temporal_reused: bool
    logs: Path
    # Where the children cache bytecode when PYTHONDONTWRITEBYTECODE was set (None: as usual).
    pycache_prefix: str | None
    processes: list[ManagedProcess] = field(default_factory=list)

    def check_alive(self) -> None:
        for process in self.processes:
            if not process.running():
                raise BenchError(
                    f"{process.name} exited with code {process.process.returncode}; see {self.logs}"
                )


def start_stack(started: list[ManagedProcess], logs: Path, data_dir: Path) -> Stack:
    """Start whatever is not given by the environment; every process goes into `started` at once."""
    temporal_address = os.environ.get("TEMPORAL_ADDRESS")
    temporal_reused = temporal_address is not None
    if temporal_address is None:
        port = free_port(HOST)
        logger.info("starting the Temporal dev server on %s:%d", HOST, port)
        with open_log(logs, "temporal") as log:
            started.append(start_temporal(host=HOST, port=port, log=log))
        temporal_address = f"{HOST}:{port}"
    redis_url = os.environ.get("REDIS_URL")
    if redis_url is None:
        port = free_port(HOST)
        logger.info("starting Redis on %s:%d", HOST, port)
        with open_log(logs, "redis") as log:
            started.append(start_redis(host=HOST, port=port, data_dir=data_dir, log=log))
        redis_url = f"redis://{HOST}:{port}/0"

    suffix = uuid.uuid4().hex[:8]
    echo_queue = f"bench-echo-{suffix}"
    bare_queue = f"bench-bare-{suffix}"
    gateway_port = free_port(HOST)
    # The children import `bench`, `gateway` and `workers` from this checkout whatever the cwd.
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {
        **os.environ,
        "PYTHONPATH": pythonpath,
        "TEMPORAL_ADDRESS": temporal_address,
        "REDIS_URL": redis_url,
        "A2A_WORKER_METRICS_PORT": "0",
    }
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        # The workflow sandbox re-imports the workflow's module for every new workflow run: without
        # bytecode it compiles the source each time, a cost no installed deployment pays (pip
        # byte-compiles). Cache it outside the source tree instead.
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE_DIR)
        logger.info(
            "PYTHONDONTWRITEBYTECODE is set: the children cache bytecode in %s", PYCACHE_DIR
        )
    children = [
        (
            "gateway",
            [sys.executable, "-m", "gateway", "serve"],
            {
                "A2A_GATEWAY_HOST": HOST,
                "A2A_GATEWAY_PORT": str(gateway_port),
                "A2A_GATEWAY_TASK_QUEUE": echo_queue,
            },
        ),
        (
            "echo worker",
            [sys.executable, "-m", "workers", "--agent", "echo"],
            {"A2A_WORKER_TASK_QUEUE": echo_queue},
        ),
        (
            "bare worker",
            [
                sys.executable,
                "-m",
                "bench.bare_worker",
                "--address",
                temporal_address,
                "--namespace",
                NAMESPACE,
                "--task-queue",
                bare_queue,
            ],
            {},
        ),
    ]
    for name, args, extra_env in children:
        logger.info("starting the %s", name)
        with open_log(logs, name.replace(" ", "-")) as log:
            started.append(ManagedProcess(name, args, env={**env, **extra_env}, log=log))
    return Stack(
        temporal_address=temporal_address,
        redis_url=redis_url,
        gateway_url=f"http://{HOST}:{gateway_port}",
        echo_queue=echo_queue,
        bare_queue=bare_queue,
        temporal_reused=temporal_reused,
        logs=logs,
        pycache_prefix=env.get("PYTHONPYCACHEPREFIX"),
        processes=started,
    )


async def wait_ready(stack: Stack, http: httpx.AsyncClient, client: Client) -> None:
    """Until the gateway's /readyz answers 200 and both workers poll their queues."""
    deadline = time.monotonic() + READY_TIMEOUT
    waiting_for = "the gateway's /readyz"
    queues = [stack.echo_queue, stack.bare_queue]
    while True:
        stack.check_alive()
        if waiting_for == "the gateway's /readyz":
            try:
                response = await http.get("/readyz", timeout=2.0)
                if response.status_code == 200:
                    waiting_for = "worker pollers"
            except httpx.TransportError:
                pass
        if waiting_for == "worker pollers":
            queues = [queue for queue in queues if not await _has_pollers(client, queue)]
            if not queues:
                return
        if time.monotonic() > deadline:
            raise BenchError(f"the stack was not ready within {READY_TIMEOUT:.0f}s ({waiting_for})")
        await asyncio.sleep(0.2)


async def _has_pollers(client: Client, queue: str) -> bool:
    kinds = (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
    for queue_type in kinds:
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=NAMESPACE, task_queue=TaskQueue(name=queue), task_queue_type=queue_type
            )
        )
        if not described.pollers:
            return False
    return True


def gateway_call(http: httpx.AsyncClient) -> Callable[[int], Awaitable[None]]:
    async def call(index: int) -> None:
        body = {
            "jsonrpc": "2.0",
            "id": index,
            "method": "message/send",
            "params": {
                "message": {
                    "role": "user",
                    "parts": [{"kind": "text", "text": f"hello {index}"}],
                    "messageId": str(uuid.uuid4()),
                    "kind": "message",
                }
            },
        }
        response = await http.post("/", json=body)
        if response.status_code != 200:
            raise BenchError(f"message/send answered HTTP {response.status_code}: {response.text}")
        reply: dict[str, Any] = response.json()
        result = reply.get("result")
        if not (
            isinstance(result, dict)
            and result.get("kind") == "task"
            and result.get("status", {}).get("state") == "completed"
        ):
            raise BenchError(f"message/send did not answer a completed task: {reply}")

    return call


def bare_call(client: Client, queue: str) -> Callable[[int], Awaitable[None]]:
    async def call(index: int) -> None:
        value = f"hello {index}"
        async with asyncio.timeout(REQUEST_TIMEOUT):
            result = await client.execute_workflow(
                BareWorkflow.run, value, id=f"bench-bare-{uuid.uuid4()}", task_queue=queue
            )
        if result != value:
            raise BenchError(f"the bare workflow returned {result!r}, expected {value!r}")

    return call


async def measure(
    sides: dict[str, Callable[[int], Awaitable[None]]], count: int, stack: Stack
) -> dict[str, list[float]]:
    """Milliseconds of each of `count` sequential calls per side, the sides taking turns call by call:
    drift on a shared machine (other load, the server's growing state) then weighs on both alike,
    and no call overlaps another."""
    samples: dict[str, list[float]] = {label: [] for label in sides}
    for index in range(count):
        for label, call in sides.items():
            started = time.perf_counter_ns()
            await call(index)
            samples[label].append((time.perf_counter_ns() - started) / 1e6)
        if index % 50 == 49:
            stack.check_alive()
    return samples


def summarize(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": percentile(ordered, 50),
        "p95_ms": percentile(ordered, 95),
        "p99_ms": percentile(ordered, 99),
        "mean_ms": statistics.fmean(ordered),
        "min_ms": ordered[0],
        "max_ms": ordered[-1],
    }


async def run_benchmark(stack: Stack, requests: int, warmup: int) -> dict[str, dict[str, float]]:
    client = await Client.connect(stack.temporal_address, namespace=NAMESPACE)
    if stack.temporal_reused:
        added = await register_search_attributes(client, NAMESPACE)
        if added:
            logger.info("registered search attributes %s", added)
    # One connection, kept alive: the HTTP hop costs what it costs a client that reuses connections.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, limits=limits, timeout=REQUEST_TIMEOUT
    ) as http:
        logger.info("waiting for the gateway and the workers")
        await wait_ready(stack, http, client)
        sides = {
            GATEWAY_LABEL: gateway_call(http),
            BARE_LABEL: bare_call(client, stack.bare_queue),
        }
        logger.info("warm-up: %d requests of each kind", warmup)
        await measure(sides, warmup, stack)
        logger.info("measuring: %d requests of each kind, alternating", requests)
        samples = await measure(sides, requests, stack)
    return {label: summarize(values) for label, values in samples.items()}


def machine_info() -> dict[str, Any]:
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(affinity) if affinity is not None else None,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "temporalio": temporalio.__version__,
        "httpx": httpx.__version__,
        # Other work on the machine shows in the figures; this says how much there was.
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def report(
    results: dict[str, dict[str, float]], requests: int, warmup: int, stack: Stack
) -> dict[str, Any]:
    gateway_p50 = results[GATEWAY_LABEL]["p50_ms"]
    bare_p50 = results[BARE_LABEL]["p50_ms"]
    return {
        "benchmark": "latency",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "requests": requests,
        "warmup": warmup,
        "machine": machine_info(),
        "temporal": "reused " + stack.temporal_address if stack.temporal_reused else "dev server",
        "children_pycache_prefix": stack.pycache_prefix,
        "results": {
            "gateway_message_send": results[GATEWAY_LABEL],
            "bare_workflow_one_activity": results[BARE_LABEL],
        },
        "ratio_p50_gateway_over_bare": gateway_p50 / bare_p50 if bare_p50 > 0 else None,
        "target_ratio_p50": 1.0,
    }


def render_table(results: dict[str, dict[str, float]], figures: dict[str, Any]) -> str:
    machine = figures["machine"]
    load = "n/a" if machine["load_average_1m"] is None else f"{machine['load_average_1m']:.2f}"
    lines = [
        f"Latency of {figures['requests']} sequential requests of each kind, alternating, after "
        f"{figures['warmup']} warm-up of each",
        f"Machine: {machine['cpu_count']} CPUs, Python {machine['python']}, "
        f"temporalio {machine['temporalio']}, load average {load} at the end",
        "",
        f"{'':<28}{'n':>6}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'mean ms':>10}",
    ]
    for label, stats in results.items():
        lines.append(
            f"{label:<28}{stats['n']:>6}{stats['p50_ms']:>10.2f}{stats['p95_ms']:>10.2f}"
            f"{stats['p99_ms']:>10.2f}{stats['mean_ms']:>10.2f}"
        )
    ratio = figures["ratio_p50_gateway_over_bare"]
    verdict = "n/a" if ratio is None else f"{ratio:.2f}"
    met = ratio is not None and ratio <= figures["target_ratio_p50"]
    lines += [
        "",
        f"gateway p50 / bare p50 = {verdict}  (target <= 1.0: {'met' if met else 'not met'})",
    ]
    return "\n".join(lines)


def run(requests: int, warmup: int) -> int:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    logs = RESULTS_DIR / "logs"
    logs.mkdir(exist_ok=True)
    started: list[ManagedProcess] = []
    with stopping(started):
        with tempfile.TemporaryDirectory(prefix="bench-redis-") as data_dir:
            stack = start_stack(started, logs, Path(data_dir))
            results = asyncio.run(run_benchmark(stack, requests, warmup))
        figures = report(results, requests, warmup, stack)
        path = RESULTS_DIR / "latency.json"
        path.write_text(json.dumps(figures, indent=2) + "\n")
        print(render_table(results, figures), flush=True)
        print(f"\nFigures: {path.relative_to(ROOT)}   Logs: {logs.relative_to(ROOT)}/", flush=True)
        return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__)
    parser.add_argument("-n", "--requests", type=int, default=200, help="measured requests per row")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests per row first")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.warmup < 0:
        parser.error("--requests must be 1 or more and --warmup 0 or more")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    exit_with(lambda: run(args.requests, args.warmup))


if __name__ == "__main__":
    main()
