"""`python -m bench.listing [--tasks N] [--callers C] [--seconds S]`: latency of listing one owner's
tasks from the Redis task index (`gateway.tasks.listing.TaskIndex`), as `ListTasks` does.

Starts a Redis on a free loopback port (or uses REDIS_URL: the run writes keys of a fresh owner there
and leaves them to expire), files N tasks for one owner through `EventPublisher` (a snapshot, a stream
entry and the index script each, as workers do), then for each scenario C concurrent callers list for S
seconds: the first page of 50, a page filtered by state, a page filtered by context and state, and a
deep page (the token of position N/2, reached by walking the pages once). Prints p50/p99 per scenario
and the rate, and writes `bench/results/listing.json`. The bar: p99 under 20 ms with 8 callers. The exit
code reflects failures only, never the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench.harness import (
    HOST,
    RESULTS_DIR,
    ROOT,
    BenchError,
    exit_with,
    machine_info,
    percentile,
    stopping,
)
from gateway.devstack.processes import ManagedProcess, free_port, start_redis
from gateway.tasks.listing import ListQuery, TaskIndex
from protocol import Task, TaskEvent, TaskState, TaskStatus, timestamp
from workers.publisher import EventPublisher

logger = logging.getLogger("bench.listing")

PAGE_SIZE = 50
P99_TARGET_MS = 20.0
SEED_CONCURRENCY = 64
CONTEXTS = 1000
STATES = [TaskState.COMPLETED, TaskState.WORKING, TaskState.INPUT_REQUIRED, TaskState.FAILED]
TTL_SECONDS = 24 * 3600
# Deadline on one listing.
LIST_TIMEOUT = 5.0


def seed_task(index: int, base_ms: int) -> Task:
    """Task `index`: two tasks share each millisecond (ties), states and contexts spread evenly."""
    moment = (base_ms + index // 2) / 1000
    status = TaskStatus(
        state=STATES[index % len(STATES)],
        timestamp=timestamp(datetime.fromtimestamp(moment, UTC)),
    )
    return Task(id=f"bench-{index:06d}", contextId=f"ctx-{index % CONTEXTS}", status=status)


async def seed(redis: Redis, owner: str, count: int) -> None:
    publisher = EventPublisher(redis, stream_max_length=10, ttl_seconds=TTL_SECONDS)
    base_ms = int(time.time() * 1000) - count
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async def filer() -> None:
        while not queue.empty():
            task = seed_task(queue.get_nowait(), base_ms)
            await publisher.publish(TaskEvent.created(task), task, owner=owner)

    started = time.monotonic()
    await asyncio.gather(*(filer() for _ in range(SEED_CONCURRENCY)))
    logger.info("filed %d tasks in %.1f s", count, time.monotonic() - started)


async def deep_token(index: TaskIndex, owner: str, position: int) -> str:
    """The token of the page that starts at `position`, by walking the pages from the top."""
    token = ""
    for _ in range(position // 100):
        page = await index.list(owner, ListQuery(page_size=100, page_token=token or None))
        token = page.next_page_token
        if not token:
            raise BenchError(f"the index ended before position {position}")
    return token


async def measure(
    call: Callable[[], Awaitable[int]], callers: int, seconds: float
) -> dict[str, Any]:
    """`callers` loops calling `call` for `seconds`; each call returns the page's length."""
    samples: list[float] = []
    deadline = time.monotonic() + seconds

    async def caller() -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            if await call() == 0:
                raise BenchError("a listing came back empty")
            samples.append((time.perf_counter() - started) * 1000)

    started = time.monotonic()
    await asyncio.gather(*(caller() for _ in range(callers)))
    elapsed = time.monotonic() - started
    samples.sort()
    return {
        "requests": len(samples),
        "p50_ms": round(percentile(samples, 50), 3),
        "p99_ms": round(percentile(samples, 99), 3),
        "max_ms": round(samples[-1], 3),
        "req_per_s": round(len(samples) / elapsed, 1),
    }


async def run_benchmark(
    redis_url: str, tasks: int, callers: int, seconds: float
) -> dict[str, dict[str, Any]]:
    redis = Redis.from_url(redis_url)
    owner = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        await seed(redis, owner, tasks)
        index = TaskIndex(redis, timeout=LIST_TIMEOUT)
        deep = await deep_token(index, owner, tasks // 2)
        scenarios = {
            "first page": ListQuery(page_size=PAGE_SIZE),
            "state=completed": ListQuery(page_size=PAGE_SIZE, state="completed"),
            "context+state": ListQuery(page_size=PAGE_SIZE, context_id="ctx-8", state="completed"),
            f"deep page (position {tasks // 2})": ListQuery(page_size=PAGE_SIZE, page_token=deep),
        }
        results = {}
        for name, query in scenarios.items():

            async def call(query: ListQuery = query) -> int:
                return len((await index.list(owner, query)).tasks)

            await measure(call, callers, min(seconds, 1.0))  # warm-up
            results[name] = await measure(call, callers, seconds)
            logger.info("%s: %s", name, results[name])
        return results
    finally:
        await redis.aclose()


def render(results: dict[str, dict[str, Any]], callers: int) -> str:
    lines = [f"{'scenario':<32} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>9} {'requests':>9}"]
    for name, row in results.items():
        lines.append(
            f"{name:<32} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
            f"{row['req_per_s']:>9.0f} {row['requests']:>9}"
        )
    worst = max(row["p99_ms"] for row in results.values())
    met = "met" if worst < P99_TARGET_MS else "not met"
    lines.append(
        f"\nworst p99 {worst:.2f} ms at {callers} callers (target < {P99_TARGET_MS} ms: {met})"
    )
    return "\n".join(lines)


def run(tasks: int, callers: int, seconds: float) -> int:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    started: list[ManagedProcess] = []
    with stopping(started), tempfile.TemporaryDirectory(prefix="bench-redis-") as data_dir:
        redis_url = os.environ.get("REDIS_URL")
        if redis_url is None:
            port = free_port(HOST)
            logger.info("starting Redis on %s:%d", HOST, port)
            started.append(start_redis(host=HOST, port=port, data_dir=Path(data_dir)))
            redis_url = f"redis://{HOST}:{port}/0"
        results = asyncio.run(run_benchmark(redis_url, tasks, callers, seconds))
    figures = {
        "tasks": tasks,
        "callers": callers,
        "seconds": seconds,
        "page_size": PAGE_SIZE,
        "target_p99_ms": P99_TARGET_MS,
        "scenarios": results,
        "machine": machine_info(),
    }
    path = RESULTS_DIR / "listing.json"
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(render(results, callers), flush=True)
    print(f"\nFigures: {path.relative_to(ROOT)}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.listing", description=__doc__)
    parser.add_argument("--tasks", type=int, default=100_000, help="tasks filed for the owner")
    parser.add_argument("--callers", type=int, default=8, help="concurrent callers")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per scenario")
    args = parser.parse_args(argv)
    if args.tasks < 2 * PAGE_SIZE or args.callers < 1 or args.seconds <= 0:
        parser.error("--tasks must be 100 or more, --callers 1 or more, --seconds above 0")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    exit_with(lambda: run(args.tasks, args.callers, args.seconds))


if __name__ == "__main__":
    main()
