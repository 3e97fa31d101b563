"""`python -m bench.load http|bare ...`: the load generator of `bench.compare`, a process of its own so
that the server under test does not share its CPU with the client.

Closed loop: C coroutines each send a request, wait for the answer and send the next, for W seconds
of warm-up and then S measured seconds. `http` posts one JSON-RPC request (`tasks/get` of a given
task, or a blocking `message/send`) to a URL through one `httpx.AsyncClient` with C keep-alive
connections; `bare` runs `bench.bare`'s workflow through one Temporal client. Every answer is checked
(a completed task, or the workflow's input back); a wrong one counts as an error, not as a request.

Prints one JSON object on stdout: requests, errors, the first error, seconds measured, requests/s,
the CPU this process used (a load generator near 100% of one CPU limits what it can measure), and
every measured latency in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import resource
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from temporalio.client import Client

from bench.bare import BareWorkflow

REQUEST_TIMEOUT = 60.0
HEADERS = {"content-type": "application/json"}

Call = Callable[[int], Awaitable[str | None]]


@dataclass
class Tally:
    measure_from: float
    measure_until: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None

    def record(self, started: float, ended: float, error: str | None) -> None:
        if not self.measure_from <= started < self.measure_until:
            return
        if error is None:
            self.latencies_ms.append(round((ended - started) * 1000, 3))
            return
        self.errors += 1
        if self.first_error is None:
            self.first_error = error


def completed_task_error(raw: bytes) -> str | None:
    """None when `raw` is a JSON-RPC response whose result is a completed task, else what it is."""
    try:
        reply = orjson.loads(raw)
        result = reply.get("result") if isinstance(reply, dict) else None
        if (
            isinstance(result, dict)
            and result.get("kind") == "task"
            and result.get("status", {}).get("state") == "completed"
        ):
            return None
    except orjson.JSONDecodeError:
        pass
    return f"not a completed task: {raw[:300]!r}"


def http_call(http: httpx.AsyncClient, request: str, task_id: str | None) -> Call:
    if request == "tasks-get":
        body = orjson.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": task_id}}
        )

        def encode(index: int) -> bytes:
            return body

    else:
        prefix = uuid.uuid4().hex

        def encode(index: int) -> bytes:
            message = {
                "role": "user",
                "parts": [{"kind": "text", "text": f"hello {index}"}],
                "messageId": f"{prefix}-{index}",
                "kind": "message",
            }
            params = {"message": message}
            return orjson.dumps(
                {"jsonrpc": "2.0", "id": index, "method": "message/send", "params": params}
            )

    async def call(index: int) -> str | None:
        response = await http.post("/", content=encode(index), headers=HEADERS)
        if response.status_code != 200:
            return f"HTTP {response.status_code}: {response.text[:300]}"
        return completed_task_error(response.content)

    return call


def bare_call(client: Client, queue: str) -> Call:
    prefix = uuid.uuid4().hex

    async def call(index: int) -> str | None:
        value = f"hello {index}"
        result = await client.execute_workflow(
            BareWorkflow.run, value, id=f"bench-load-{prefix}-{index}", task_queue=queue
        )
        return None if result == value else f"the bare workflow returned {result!r}"

    return call


async def drive(call: Call, concurrency: int, warmup: float, duration: float) -> Tally:
    start = time.perf_counter()
    tally = Tally(measure_from=start + warmup, measure_until=start + warmup + duration)
    counter = itertools.count()

    async def loop() -> None:
        while (started := time.perf_counter()) < tally.measure_until:
            error: str | None
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    error = await call(next(counter))
            except (httpx.HTTPError, TimeoutError, OSError) as err:
                error = f"{type(err).__name__}: {err}"
            tally.record(started, time.perf_counter(), error)

    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(loop())
    return tally


async def run(args: argparse.Namespace) -> Tally:
    if args.target == "bare":
        client = await Client.connect(args.address, namespace=args.namespace)
        return await drive(
            bare_call(client, args.task_queue), args.concurrency, args.warmup, args.duration
        )
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    async with httpx.AsyncClient(base_url=args.url, limits=limits, timeout=REQUEST_TIMEOUT) as http:
        call = http_call(http, args.request, args.task_id)
        return await drive(call, args.concurrency, args.warmup, args.duration)


def report(
    tally: Tally, duration: float, cpu_seconds: float, wall_seconds: float
) -> dict[str, Any]:
    return {
        "requests": len(tally.latencies_ms),
        "errors": tally.errors,
        "first_error": tally.first_error,
        "seconds": duration,
        "rps": len(tally.latencies_ms) / duration,
        "client_cpu_percent": 100 * cpu_seconds / wall_seconds if wall_seconds > 0 else None,
        "latencies_ms": tally.latencies_ms,
    }


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    targets = parser.add_subparsers(dest="target", required=True)
    http = targets.add_parser("http", help="JSON-RPC over HTTP")
    http.add_argument("--url", required=True)
    http.add_argument("--request", choices=["tasks-get", "message-send"], required=True)
    http.add_argument("--task-id", help="the task tasks/get asks for")
    bare = targets.add_parser("bare", help="bench.bare's workflow through Temporal")
    bare.add_argument("--address", required=True, help="Temporal frontend, HOST:PORT")
    bare.add_argument("--namespace", default="default")
    bare.add_argument("--task-queue", required=True)
    args = parser.parse_args(argv)
    if args.target == "http" and args.request == "tasks-get" and not args.task_id:
        parser.error("tasks-get needs --task-id")
    wall, cpu = time.perf_counter(), cpu_seconds()
    tally = asyncio.run(run(args))
    figures = report(tally, args.duration, cpu_seconds() - cpu, time.perf_counter() - wall)
    sys.stdout.buffer.write(orjson.dumps(figures) + b"\n")
    sys.stdout.flush()
    # temporalio can abort at interpreter exit; leave without running finalizers.
    os._exit(0)


if __name__ == "__main__":
    main()
