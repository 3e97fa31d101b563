"""A worker killed with SIGKILL mid-task: Temporal retries the turn on a second worker, which finishes it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import pytest
from redis.asyncio import Redis
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from gateway.devstack.processes import ManagedProcess
from gateway.settings import GatewaySettings
from tests.conftest import RpcClient, app_client
from tests.integration import eventlog
from tests.integration.ended import final_status


def start_worker(
    queue: str,
    temporal_address: str,
    redis_url: str,
    log: Path,
    extra_env: Mapping[str, str] | None = None,
) -> ManagedProcess:
    env = {
        **os.environ,
        # Several workers run at once here: no metrics port unless a test asks for one.
        "A2A_WORKER_METRICS_PORT": "0",
        **(extra_env or {}),
        "TEMPORAL_ADDRESS": temporal_address,
        "REDIS_URL": redis_url,
        "A2A_WORKER_TASK_QUEUE": queue,
        "A2A_WORKER_HEARTBEAT_SECONDS": "0.2",
    }
    with log.open("ab") as out:
        return ManagedProcess(
            "worker", [sys.executable, "-m", "workers", "--agent", "echo"], env=env, log=out
        )


@contextlib.contextmanager
def running_worker(
    queue: str,
    temporal_address: str,
    redis_url: str,
    log: Path,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[ManagedProcess]:
    """`start_worker`'s worker, stopped on the way out."""
    worker = start_worker(queue, temporal_address, redis_url, log, extra_env)
    try:
        yield worker
    finally:
        worker.stop()


async def send_slow_echo(rpc: RpcClient, text: str, *, delay: float) -> str:
    """Start (non-blocking) an echo of `text` streamed one character per chunk, `delay` s apart."""
    message = {
        "role": "user",
        "parts": [{"kind": "text", "text": text}],
        "messageId": str(uuid.uuid4()),
        "metadata": {"echo": {"chunks": len(text), "delay": delay}},
    }
    body = await rpc.call(
        "message/send", {"message": message, "configuration": {"blocking": False}}
    )
    task_id: str = body["result"]["id"]
    return task_id


@pytest.fixture
async def crash_rpc(gateway_settings: GatewaySettings) -> AsyncIterator[tuple[RpcClient, str]]:
    queue = f"crash-{uuid.uuid4().hex[:8]}"
    settings = gateway_settings.model_copy(update={"task_queue": queue})
    async with app_client(settings) as http:
        yield RpcClient(http), queue


async def test_worker_killed_mid_task_second_worker_completes_it(
    crash_rpc: tuple[RpcClient, str],
    temporal_address: str,
    redis_url: str,
    redis: Redis,
    temporal_client: Client,
    tmp_path: Path,
) -> None:
    rpc, queue = crash_rpc
    first = start_worker(queue, temporal_address, redis_url, tmp_path / "first.log")
    second: ManagedProcess | None = None
    try:
        text = "abcdefghijklmnopqrst"
        task_id = await send_slow_echo(rpc, text, delay=0.15)
        await eventlog.read_until(redis, task_id, eventlog.count("task.progress", at_least=3))
        first.kill()
        second = start_worker(queue, temporal_address, redis_url, tmp_path / "second.log")

        log = await eventlog.read_until(redis, task_id, eventlog.final)
        final = log[-1]["task"]
        assert final["status"]["state"] == "completed"
        assert final["artifacts"][0]["parts"] == [{"kind": "text", "text": c} for c in text]

        progress = [
            (e["append"], e["artifact"]["parts"][0]["text"])
            for e in log
            if e["type"] == "task.progress"
        ]
        restart = max(i for i, (append, _) in enumerate(progress) if not append)
        # The first attempt got part of the way; the retry restarted the artifact (append=false) and
        # streamed the whole text once.
        assert 3 <= restart < 20
        assert progress[restart:] == [(i > 0, c) for i, c in enumerate(text)]

        handle = temporal_client.get_workflow_handle(task_id)
        await final_status(temporal_client, task_id)
        attempts = [
            e.activity_task_started_event_attributes.attempt
            async for e in handle.fetch_history_events()
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        ]
        assert attempts == [2]  # history records only the start of the attempt that finished
        got = await rpc.call("tasks/get", {"id": task_id})
        assert got["result"] == final
    finally:
        first.stop()
        if second is not None:
            second.stop()


async def test_worker_sigterm_mid_task_finishes_the_turn_then_exits(
    crash_rpc: tuple[RpcClient, str],
    temporal_address: str,
    redis_url: str,
    redis: Redis,
    tmp_path: Path,
) -> None:
    rpc, queue = crash_rpc
    worker = start_worker(queue, temporal_address, redis_url, tmp_path / "worker.log")
    try:
        task_id = await send_slow_echo(rpc, "abcdefghij", delay=0.2)
        await eventlog.read_until(redis, task_id, eventlog.count("task.progress", at_least=2))
        worker.process.terminate()
        log = await eventlog.read_until(redis, task_id, eventlog.final)
        # The running turn was allowed to finish: one attempt, the whole text, then a clean exit.
        assert [
            (e["append"], e["artifact"]["parts"][0]["text"])
            for e in log
            if e["type"] == "task.progress"
        ] == [(i > 0, c) for i, c in enumerate("abcdefghij")]
        assert log[-1]["task"]["status"]["state"] == "completed"
        assert await asyncio.to_thread(worker.process.wait, 30) == 0
    finally:
        worker.stop()


async def test_turns_outnumbering_the_redis_pool_wait_for_a_connection(
    crash_rpc: tuple[RpcClient, str],
    temporal_address: str,
    redis_url: str,
    redis: Redis,
    temporal_client: Client,
    tmp_path: Path,
) -> None:
    rpc, queue = crash_rpc
    log_path = tmp_path / "worker.log"
    worker = start_worker(
        queue, temporal_address, redis_url, log_path, {"A2A_WORKER_REDIS_MAX_CONNECTIONS": "1"}
    )
    try:
        text = "abcdefgh"
        task_ids = await asyncio.gather(*(send_slow_echo(rpc, text, delay=0.02) for _ in range(12)))
        for task_id in task_ids:
            log = await eventlog.read_until(redis, task_id, eventlog.final)
            assert log[-1]["task"]["status"]["state"] == "completed"
            chunks = [
                e["artifact"]["parts"][0]["text"] for e in log if e["type"] == "task.progress"
            ]
            assert chunks == list(text)
            handle = temporal_client.get_workflow_handle(task_id)
            await final_status(temporal_client, task_id)
            attempts = [
                e.activity_task_started_event_attributes.attempt
                async for e in handle.fetch_history_events()
                if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
            ]
            assert attempts == [1]
        assert "Too many connections" not in log_path.read_text()
    finally:
        worker.stop()


@pytest.mark.parametrize(
    "kill_first", [True, False], ids=["killed-then-canceled", "canceled-and-killed"]
)
async def test_a_cancel_as_the_worker_dies_ends_the_task_canceled_exactly_once(
    kill_first: bool,
    crash_rpc: tuple[RpcClient, str],
    temporal_address: str,
    redis_url: str,
    redis: Redis,
    temporal_client: Client,
    tmp_path: Path,
) -> None:
    """The fast path (Redis) and the backstop (the workflow's cancel of the turn's activity) meet a
    worker that dies: whichever ends the task, its log ends once, canceled."""
    rpc, queue = crash_rpc
    first = start_worker(queue, temporal_address, redis_url, tmp_path / "first.log")
    second: ManagedProcess | None = None
    try:
        task_id = await send_slow_echo(rpc, "abcdefghijklmnopqrst", delay=0.2)
        await eventlog.read_until(redis, task_id, eventlog.count("task.progress", at_least=2))
        cancel = asyncio.create_task(rpc.call("tasks/cancel", {"id": task_id}, "c"))
        if not kill_first:
            await asyncio.sleep(0)
        first.kill()
        second = start_worker(queue, temporal_address, redis_url, tmp_path / "second.log")
        answer = await asyncio.wait_for(cancel, 60)
        assert answer["result"]["status"]["state"] == "canceled"

        handle = temporal_client.get_workflow_handle(task_id)
        status = await asyncio.wait_for(final_status(temporal_client, handle.id), 60)
        assert status["state"] == "canceled"
        await asyncio.sleep(1.0)  # anything a dying or retried attempt would add, added by now
        log = await eventlog.events(redis, task_id)
        finals = [e for e in log if e["type"] == "task.completed"]
        assert [f["task"]["status"]["state"] for f in finals] == ["canceled"]
        assert log[-1] is finals[0]
        got = await rpc.call("tasks/get", {"id": task_id})
        assert got["result"] == finals[0]["task"]
    finally:
        first.stop()
        if second is not None:
            second.stop()
