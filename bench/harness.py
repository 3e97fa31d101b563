"""What every benchmark driver shares: its error type, percentiles, log files, the stack of the
end-to-end benchmarks (Temporal, Redis, a gateway, an echo worker and a bare worker), a description
of the machine, stopping what it started on Ctrl-C or SIGTERM, and leaving the process the way
temporalio needs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import platform
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any, NoReturn

import httpx
import temporalio
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from gateway.devstack.processes import (
    DevStackError,
    ManagedProcess,
    free_port,
    start_redis,
    start_temporal,
)

logger = logging.getLogger("bench")

HOST = "127.0.0.1"
NAMESPACE = "default"
ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
PYCACHE_DIR = RESULTS_DIR / "pycache"
# Deadline on the stack becoming ready.
READY_TIMEOUT = 60.0


class BenchError(Exception):
    """The benchmark could not run or got a wrong answer (never a slow figure: figures are reported)."""


def percentile(sorted_samples: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    position = (len(sorted_samples) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(sorted_samples) - 1)
    return sorted_samples[low] + (sorted_samples[high] - sorted_samples[low]) * (position - low)


def open_log(logs: Path, name: str) -> IO[bytes]:
    return (logs / f"{name}.log").open("wb")


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
    # The environment of the children: this checkout on PYTHONPATH, the Temporal and Redis addresses.
    env: dict[str, str]
    processes: list[ManagedProcess] = field(default_factory=list)
    # What each gateway and echo worker this stack starts is given beyond `env`.
    gateway_env: dict[str, str] = field(default_factory=dict)
    worker_env: dict[str, str] = field(default_factory=dict)

    def start_gateway(self, name: str, port: int) -> str:
        """One more `a2a-gateway serve` on the echo queue, on `port`; its URL."""
        env = {**self.gateway_env, "A2A_GATEWAY_HOST": HOST, "A2A_GATEWAY_PORT": str(port)}
        self.start(name, [sys.executable, "-m", "gateway", "serve"], env)
        return f"http://{HOST}:{port}"

    def start_worker(self, name: str) -> ManagedProcess:
        """One more echo worker on the stack's queue."""
        args = [sys.executable, "-m", "workers", "--agent", "echo"]
        return self.start(name, args, self.worker_env)

    def start(self, name: str, args: list[str], extra_env: dict[str, str]) -> ManagedProcess:
        """Start one more child, logging to `<logs>/<name>.log`; it is stopped with the others."""
        logger.info("starting the %s", name)
        with open_log(self.logs, name.replace(" ", "-")) as log:
            process = ManagedProcess(name, args, env={**self.env, **extra_env}, log=log)
        self.processes.append(process)
        return process

    def check_alive(self) -> None:
        for process in self.processes:
            if not process.running():
                raise BenchError(
                    f"{process.name} exited with code {process.process.returncode}; see {self.logs}"
                )


def start_stack(
    started: list[ManagedProcess],
    logs: Path,
    data_dir: Path,
    *,
    worker_env: dict[str, str] | None = None,
    gateway_env: dict[str, str] | None = None,
) -> Stack:
    """Start whatever is not given by the environment; every process goes into `started` at once.
    `worker_env` adds to the echo worker's environment (`A2A_WORKER_*` settings), `gateway_env` to
    the gateway's."""
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
    stack = Stack(
        temporal_address=temporal_address,
        redis_url=redis_url,
        gateway_url=f"http://{HOST}:{gateway_port}",
        echo_queue=echo_queue,
        bare_queue=bare_queue,
        temporal_reused=temporal_reused,
        logs=logs,
        pycache_prefix=env.get("PYTHONPYCACHEPREFIX"),
        env=env,
        processes=started,
    )
    stack.gateway_env = {**(gateway_env or {}), "A2A_GATEWAY_TASK_QUEUE": echo_queue}
    stack.worker_env = {**(worker_env or {}), "A2A_WORKER_TASK_QUEUE": echo_queue}
    stack.start_gateway("gateway", gateway_port)
    stack.start_worker("echo worker")
    bare_args = [
        "--address",
        temporal_address,
        "--namespace",
        NAMESPACE,
        "--task-queue",
        bare_queue,
    ]
    stack.start("bare worker", [sys.executable, "-m", "bench.bare_worker", *bare_args], {})
    return stack


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


_interrupted: list[int] = []


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # Ctrl-C reaches the children too, so what fails next may be a request to a server that has just
    # stopped rather than this KeyboardInterrupt: `exit_with` reads the signal from here.
    _interrupted.append(signum)
    raise KeyboardInterrupt


@contextlib.contextmanager
def stopping(started: list[ManagedProcess]) -> Iterator[None]:
    """SIGTERM ends the run as Ctrl-C does; either way every process in `started` is stopped."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # as `nohup` leaves it: keep ignoring
            signal.signal(signum, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for process in reversed(started):
            if process.running():
                logger.info("stopping %s (pid %d)", process.name, process.pid)
            process.stop()


def _failed(reason: str, *, trace: bool = False) -> int:
    if _interrupted:
        logger.warning("interrupted (%s)", reason)
        return 130
    logger.error("benchmark failed: %s", reason, exc_info=trace)
    return 1


def exit_with(run: Callable[[], int]) -> NoReturn:
    """Run a benchmark and leave with its exit code: 0, 1 on failure, 130 when interrupted."""
    try:
        code = run()
    except KeyboardInterrupt:
        logger.warning("interrupted")
        code = 130
    except (BenchError, DevStackError) as err:
        code = _failed(str(err))
    except Exception as err:
        code = _failed(f"{type(err).__name__}: {err}", trace=True)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # temporalio can abort at interpreter exit; leave without running finalizers.
    os._exit(code)
