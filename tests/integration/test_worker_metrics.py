"""The worker's Prometheus endpoint: our metrics and Temporal's on one port, counted exactly for a known
sequence of tasks, pushes and turns; an in-process worker, and the `a2a-worker` process itself."""

from __future__ import annotations

import asyncio
import errno
import math
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from gateway.devstack.processes import free_port
from gateway.settings import GatewaySettings
from protocol import Task, TaskEvent, TaskState, TaskStatus
from tests.conftest import RpcClient, app_client
from tests.integration.sse import echo_message
from tests.integration.test_push import LOOPBACK, finished, push_settings, send
from tests.integration.test_worker_crash import start_worker
from tests.integration.webhook import receiver
from tests.waiting import eventually
from workers import EventPublisher, WorkerSettings, create_worker
from workers.metrics import HISTOGRAM_BUCKETS, TURN_SECONDS, WorkerMetrics, prometheus_runtime

HOST = "127.0.0.1"
# Every series of ours carries these; the worker's runtime adds its `service_name` to everything it
# serves (OTEL_SERVICE_NAME, else a2a-worker).
OURS = {"agent": "echo", "service_name": "a2a-worker"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(port: int) -> Samples:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://{HOST}:{port}/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def series(samples: Samples, name: str, by: str, **fixed: str) -> dict[str, float]:
    """The values of `name` by the label `by`, among the samples whose other labels are exactly
    `fixed`."""
    found = {}
    for (sample_name, labels), value in samples.items():
        other = dict(labels)
        key = other.pop(by, None)
        if sample_name == name and key is not None and other == fixed:
            found[key] = value
    return found


async def settled(port: int, expected: Any, read: Callable[[Samples], Any]) -> Samples:
    """The first scrape for which `read(samples)` equals `expected`, within 10 s (the exporter may lag
    the work by a moment)."""
    return await eventually(
        lambda: scrape(port),
        10,
        what=f"the worker's metrics to read {expected!r}",
        until=lambda samples: read(samples) == expected,
        interval=0.1,
    )


@pytest.fixture(scope="module")
def metrics_queue() -> str:
    return f"test-metrics-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port(HOST)


@pytest.fixture(scope="module")
async def metrics_worker(
    temporal_address: str,
    redis: Redis,
    worker_settings: WorkerSettings,
    metrics_queue: str,
    metrics_port: int,
) -> AsyncIterator[None]:
    runtime = prometheus_runtime(HOST, metrics_port)
    client = await Client.connect(
        temporal_address, data_converter=pydantic_data_converter, runtime=runtime
    )
    settings = worker_settings.model_copy(
        update={
            "task_queue": metrics_queue,
            "push_allow_http": True,
            "push_allowlist": LOOPBACK,
            "push_timeout_seconds": 2.0,
        }
    )
    metrics = WorkerMetrics(runtime.metric_meter, agent="echo")
    async with create_worker(client, redis, settings, metrics=metrics):
        yield


@pytest.fixture
async def metrics_rpc(
    gateway_settings: GatewaySettings, metrics_queue: str, metrics_worker: None
) -> AsyncIterator[RpcClient]:
    async with app_client(push_settings(gateway_settings, metrics_queue)) as http:
        yield RpcClient(http)


async def test_worker_metrics_count_tasks_turns_events_and_pushes(
    metrics_rpc: RpcClient, temporal_client: Client, metrics_port: int, metrics_queue: str
) -> None:
    rpc = metrics_rpc
    async with receiver(statuses=[500]) as hook:
        pushed = await send(
            rpc, echo_message("hello", chunks=2), pushNotificationConfig={"url": hook.url}
        )
        await finished(temporal_client, pushed["id"])
        assert len(hook.received) == 2
    asked = await send(rpc, echo_message("ask", finalState="input-required"))
    answered = await send(rpc, {**echo_message("more"), "taskId": asked["id"]})
    assert answered["status"]["state"] == "completed"
    failed = await send(rpc, echo_message("boom", failOnTurn=1))
    assert failed["status"]["state"] == "failed"
    waiting = await send(rpc, echo_message("wait", finalState="input-required"))
    canceled = await rpc.call("tasks/cancel", {"id": waiting["id"]})
    assert canceled["result"]["status"]["state"] == "canceled"
    for task in (asked, failed, waiting):
        await finished(temporal_client, task["id"])

    expected = {
        "finished": {"completed": 2.0, "failed": 1.0, "canceled": 1.0},
        "turns": {"completed": 2.0, "input-required": 2.0, "failed": 1.0, "canceled": 1.0},
        # task.created: 4 tasks; task.status: a `working` per turn (5 turns, the failing one
        # included); task.progress: 2 + 1 + 1 + 0 + 1 chunks; task.completed: 6 turn ends.
        "events": {
            "task.created": 4.0,
            "task.status": 5.0,
            "task.progress": 5.0,
            "task.completed": 6.0,
        },
        "pushes": {"retry": 1.0, "delivered": 1.0},
        # Every attempt that streamed a chunk; the one that failed streamed nothing.
        "first_token": 4.0,
        # The attempts that returned; the failing one raised, and the canceled task had no turn running.
        "turn": {"completed": 2.0, "input-required": 2.0},
        # Temporal's own count of how the task workflows ended: the failed and the canceled task's
        # workflows end Failed (the Temporal UI's status filter shows them).
        "workflows": {"completed": 2.0, "failed": 2.0},
    }

    def read(samples: Samples) -> dict[str, Any]:
        return {
            "finished": series(samples, "a2a_tasks_finished_total", "state", **OURS),
            "turns": series(samples, "a2a_turns_ended_total", "state", **OURS),
            "events": series(samples, "a2a_events_published_total", "type", **OURS),
            "pushes": series(samples, "a2a_push_deliveries_total", "outcome", **OURS),
            "first_token": samples.get(
                ("a2a_agent_first_token_seconds_count", frozenset(OURS.items()))
            ),
            "turn": series(samples, "a2a_agent_turn_seconds_count", "state", **OURS),
            "workflows": {
                end: value
                for end in ("completed", "failed", "canceled")
                for value in series(
                    samples,
                    f"temporal_workflow_{end}_total",
                    "workflow_type",
                    namespace="default",
                    service_name="a2a-worker",
                    task_queue=metrics_queue,
                ).values()
            },
        }

    samples = await settled(metrics_port, expected, read)
    assert read(samples) == expected

    buckets = series(samples, "a2a_agent_turn_seconds_bucket", "le", **OURS, state="completed")
    assert [float(le) for le in buckets] == [*HISTOGRAM_BUCKETS[TURN_SECONDS], math.inf]
    assert buckets["+Inf"] == 2.0
    # Temporal's SDK metrics, in seconds: every attempt of this worker's activities.
    attempts = series(
        samples,
        "temporal_activity_execution_latency_seconds_count",
        "activity_type",
        namespace="default",
        service_name="a2a-worker",
        task_queue=metrics_queue,
        workflow_type="TaskWorkflow",
    )
    assert attempts == {"publish_event": 2.0, "deliver_push": 2.0}
    # Every turn was a blocking send's quick one: a local activity.
    local = series(
        samples,
        "temporal_local_activity_execution_latency_seconds_count",
        "activity_type",
        namespace="default",
        service_name="a2a-worker",
        task_queue=metrics_queue,
        workflow_type="TaskWorkflow",
    )
    assert local == {"run_quick_turn": 5.0}


async def test_publisher_counts_only_the_events_it_wrote(redis: Redis) -> None:
    """A retried first turn announces the task only if no snapshot exists yet: the second
    `task.created` is not written, and not counted."""
    port = free_port(HOST)
    runtime = prometheus_runtime(HOST, port)
    publisher = EventPublisher(
        redis,
        stream_max_length=100,
        ttl_seconds=60,
        metrics=WorkerMetrics(runtime.metric_meter, agent="echo"),
    )
    task = Task(
        id=str(uuid.uuid4()),
        contextId=str(uuid.uuid4()),
        status=TaskStatus(state=TaskState.SUBMITTED),
    )
    assert await publisher.publish(TaskEvent.created(task), task, only_if_new=True) is not None
    assert await publisher.publish(TaskEvent.created(task), task, only_if_new=True) is None
    expected = {"task.created": 1.0}

    def read(samples: Samples) -> dict[str, float]:
        return series(samples, "a2a_events_published_total", "type", **OURS)

    assert read(await settled(port, expected, read)) == expected


async def test_worker_process_serves_metrics_on_its_port(
    gateway_settings: GatewaySettings,
    temporal_address: str,
    redis_url: str,
    temporal_client: Client,
    tmp_path: Path,
) -> None:
    queue = f"metrics-cli-{uuid.uuid4().hex[:8]}"
    port = free_port(HOST)
    log = tmp_path / "worker.log"
    worker = start_worker(
        queue, temporal_address, redis_url, log, {"A2A_WORKER_METRICS_PORT": str(port)}
    )
    try:
        async with app_client(gateway_settings.model_copy(update={"task_queue": queue})) as http:
            rpc = RpcClient(http)
            task = await send(rpc, echo_message("hi"))
            assert task["status"]["state"] == "completed"
            await finished(temporal_client, task["id"])
        expected = {"completed": 1.0}

        def read(samples: Samples) -> dict[str, float]:
            return series(samples, "a2a_tasks_finished_total", "state", **OURS)

        samples = await settled(port, expected, read)
        assert read(samples) == expected
        assert series(
            samples,
            "temporal_workflow_completed_total",
            "workflow_type",
            namespace="default",
            service_name="a2a-worker",
            task_queue=queue,
        ) == {"TaskWorkflow": 1.0}
    finally:
        worker.stop()
    assert f"INFO workers.cli metrics on http://{HOST}:{port}/metrics" in log.read_text()


async def test_worker_process_metrics_port_in_use_exits_naming_the_variable(
    temporal_address: str, redis_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = start_worker(
            "metrics-port-taken",
            temporal_address,
            redis_url,
            log,
            {"A2A_WORKER_METRICS_PORT": str(port)},
        )
        try:
            code = await asyncio.to_thread(worker.process.wait, 30)
        finally:
            worker.stop()
    assert code == 1
    [line] = [line for line in log.read_text().splitlines() if "ERROR" in line]
    assert line.endswith(
        f"ERROR workers.cli a2a-worker: cannot serve worker metrics on {HOST}:{port}: "
        f"Failed starting Prometheus exporter: {os.strerror(errno.EADDRINUSE)} "
        f"(os error {errno.EADDRINUSE}); set A2A_WORKER_METRICS_PORT to a free port "
        "(0 turns the metrics endpoint off)"
    )
