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
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from bench.bare import BareWorkflow
from bench.harness import (
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
from gateway.devstack.processes import ManagedProcess, register_search_attributes

logger = logging.getLogger("bench.latency")

GATEWAY_LABEL = "gateway message/send"
BARE_LABEL = "bare workflow + 1 activity"
# Deadline on one measured request.
REQUEST_TIMEOUT = 60.0


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
