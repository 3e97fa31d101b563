"""Fault injection, each bounded in time: a worker or a gateway killed with SIGKILL while a client
streams, Redis restarted empty and the Temporal dev server (SQLite-backed) restarted while tasks run."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from gateway.devstack.processes import (
    DevStackError,
    ManagedProcess,
    free_port,
    start_redis,
    start_temporal,
)
from protocol import Task, TaskEvent, TaskState, TaskStatus, task_snapshot_key
from tests.conftest import unavailable
from tests.integration import eventlog
from tests.integration.conftest import LaunchGateway
from tests.integration.ended import final_status
from tests.integration.sse import (
    Frame,
    GatewayProcess,
    SSEResponse,
    echo_message,
    gateway_process,
    read_stream,
    rpc_body,
    stream_frames,
)
from tests.integration.test_streaming import as_log, checked, event_id, expected_frames
from tests.integration.test_worker_crash import start_worker
from workers.publisher import EventPublisher

HOST = "127.0.0.1"
TEXT = "abcdefghijklmnopqrst"


def queue_name(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:8]}"


def progress(results: list[dict[str, Any]]) -> list[tuple[bool, str]]:
    """(append, text) of each artifact update of an A2A stream."""
    return [
        (result["append"], result["artifact"]["parts"][0]["text"])
        for result in results
        if result["kind"] == "artifact-update"
    ]


def text_of(task: dict[str, Any]) -> str:
    [artifact] = task["artifacts"]
    return "".join(part["text"] for part in artifact["parts"])


async def rpc(
    client: httpx.AsyncClient, url: str, method: str, params: Any, deadline: float = 30
) -> dict[str, Any]:
    async with asyncio.timeout(deadline):
        response = await client.post(url, json=rpc_body(method, params))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def start_slow(client: httpx.AsyncClient, url: str, text: str, delay: float) -> str:
    message = echo_message(text, chunks=len(text), delay=delay)
    body = await rpc(
        client, url, "message/send", {"message": message, "configuration": {"blocking": False}}
    )
    task_id: str = body["result"]["id"]
    return task_id


async def test_worker_killed_mid_stream_client_sees_artifact_restart_then_text_once(
    launch_gateway: LaunchGateway,
    sse_client: httpx.AsyncClient,
    temporal_address: str,
    redis_url: str,
    redis: Redis,
    tmp_path: Path,
) -> None:
    queue = queue_name("fault-worker")
    first = start_worker(queue, temporal_address, redis_url, tmp_path / "first.log")
    second: ManagedProcess | None = None
    frames: list[Frame] = []
    message = echo_message(TEXT, chunks=len(TEXT), delay=0.15)
    try:
        with launch_gateway("worker-kill", env={"A2A_GATEWAY_TASK_QUEUE": queue}) as gateway:
            async with (
                asyncio.timeout(40),
                sse_client.stream(
                    "POST", gateway.url, json=rpc_body("message/stream", {"message": message})
                ) as response,
            ):
                assert response.headers["content-type"] == "text/event-stream"
                async for frame in stream_frames(response):
                    frames.append(frame)
                    if second is None and len(progress(as_results(frames))) == 3:
                        first.kill()
                        second = start_worker(
                            queue, temporal_address, redis_url, tmp_path / "second.log"
                        )
    finally:
        first.stop()
        if second is not None:
            second.stop()
    stream = checked(SSEResponse(200, httpx.Headers({"content-type": "text/event-stream"}), frames))
    results = [frame.data["result"] for frame in stream]
    task_id = results[0]["id"]
    # Exactly the log, once: the events of the killed attempt, then the retry's.
    assert as_log(stream) == expected_frames(await eventlog.log_entries(redis, task_id))
    chunks = progress(results)
    restart = max(i for i, (append, _) in enumerate(chunks) if not append)
    assert 3 <= restart < len(TEXT)
    assert chunks[:restart] == [(i > 0, c) for i, c in enumerate(TEXT[:restart])]
    assert chunks[restart:] == [(i > 0, c) for i, c in enumerate(TEXT)]
    assert results[-1]["final"] is True
    assert results[-1]["status"]["state"] == "completed"


def as_results(frames: list[Frame]) -> list[dict[str, Any]]:
    return [frame.data["result"] for frame in frames if frame.data is not None]


async def test_gateway_killed_mid_stream_client_resumes_on_another_exactly_once(
    launch_gateway: LaunchGateway,
    gateway_b: GatewayProcess,
    sse_client: httpx.AsyncClient,
    redis: Redis,
) -> None:
    message = echo_message("z" * 40, chunks=40, delay=0.05)
    with launch_gateway("killed") as doomed:
        received, complete = await read_then_kill(sse_client, doomed, message, after=5)
        # The killed gateway never ended the chunked response: the client sees a broken stream.
        assert not complete
        assert await asyncio.to_thread(doomed.process.wait, 5) == -9
        first = checked(
            SSEResponse(200, httpx.Headers({"content-type": "text/event-stream"}), received), 9
        )
        task_id = first[0].data["result"]["id"]
        resumed = checked(
            await read_stream(
                sse_client,
                "POST",
                gateway_b.url,
                json=rpc_body("tasks/resubscribe", {"id": task_id}, 9),
                headers={"Last-Event-ID": event_id(first[-1])},
                deadline=20,
            ),
            9,
        )
    entries = await eventlog.read_until(redis, task_id, eventlog.final, deadline_seconds=10)
    assert len(entries) == 43  # task.created, working, 40 chunks, completed
    log = expected_frames(await eventlog.log_entries(redis, task_id))
    assert 5 <= len(first) < 43
    assert as_log(first) + as_log(resumed) == log
    assert resumed[-1].data["result"]["status"]["state"] == "completed"


async def read_then_kill(
    client: httpx.AsyncClient, gateway: GatewayProcess, message: dict[str, Any], *, after: int
) -> tuple[list[Frame], bool]:
    """Stream `message` from `gateway`, SIGKILL the gateway once `after` frames have arrived and read
    on until the connection breaks. Returns the frames and whether the response ended cleanly."""
    frames: list[Frame] = []
    try:
        async with (
            asyncio.timeout(20),
            client.stream(
                "POST", gateway.url, json=rpc_body("message/stream", {"message": message}, 9)
            ) as response,
        ):
            async for frame in stream_frames(response):
                frames.append(frame)
                if len(frames) == after:
                    gateway.process.kill()
    except httpx.RemoteProtocolError:
        return frames, False
    return frames, True


class Server:
    """A local server that can be restarted on the same port."""

    def __init__(self, start: Any) -> None:
        self._start = start
        self.process: ManagedProcess = start()

    def restart(self) -> None:
        self.process.stop()
        self.process = self._start()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[Server, str]]:
    port = free_port(HOST)
    try:
        server = Server(lambda: start_redis(host=HOST, port=port, data_dir=tmp_path / "redis"))
    except DevStackError as err:
        unavailable(f"Redis unavailable: {err}")
    try:
        yield server, f"redis://{HOST}:{port}/0"
    finally:
        server.process.stop()


@pytest.fixture
async def own_redis_client(own_redis: tuple[Server, str]) -> AsyncIterator[Redis]:
    client = Redis.from_url(own_redis[1])
    yield client
    await client.aclose()


def working_task(task_id: str) -> Task:
    return Task(id=task_id, contextId="ctx", status=TaskStatus(state=TaskState.WORKING))


async def test_a_publish_waits_out_a_redis_restart(
    own_redis: tuple[Server, str], own_redis_client: Redis
) -> None:
    redis_server, url = own_redis
    client = Redis.from_url(url)
    publisher = EventPublisher(client, stream_max_length=100, ttl_seconds=60)
    task = working_task(f"restart-{uuid.uuid4().hex[:8]}")
    try:
        assert await publisher.publish(TaskEvent.created(task), task) is not None
        redis_server.process.stop()
        sent = asyncio.create_task(
            publisher.publish(TaskEvent.status_changed(task, task.status), task)
        )
        await asyncio.sleep(0.5)
        assert not sent.done()
        redis_server.process = redis_server._start()
        entry_id = await asyncio.wait_for(sent, 10)
    finally:
        await client.aclose()
    # The emptied Redis holds the one event sent to it.
    assert await eventlog.log_entries(own_redis_client, task.id) == [
        (entry_id, TaskEvent.status_changed(task, task.status).to_wire())
    ]


async def test_a_publish_whose_reply_was_lost_is_written_once(
    own_redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sent again after Redis ran it (by the worker, or by a cluster client's own retry), with another
    writer's entry in between: the publish's entry is written once, and its id is the answer."""
    publisher = EventPublisher(own_redis_client, stream_max_length=100, ttl_seconds=60)
    other = EventPublisher(own_redis_client, stream_max_length=100, ttl_seconds=60)
    script = publisher._script
    task = working_task(f"lost-{uuid.uuid4().hex[:8]}")
    canceled = task.model_copy(update={"status": TaskStatus(state=TaskState.CANCELED)})
    calls = 0

    async def reply_lost_once(keys: list[Any], args: list[Any]) -> Any:
        """The script runs in Redis; its first reply does not come back, and before it is sent again
        another writer ends the task."""
        nonlocal calls
        calls += 1
        entry_id = await script(keys=keys, args=args)
        if calls == 1:
            await other.publish(TaskEvent.completed(canceled), canceled)
            raise RedisConnectionError("Connection closed by server.")
        return entry_id

    monkeypatch.setattr(publisher, "_script", reply_lost_once)
    entry_id = await publisher.publish(TaskEvent.created(task), task)
    assert calls == 2
    entries = await eventlog.log_entries(own_redis_client, task.id)
    assert entries == [
        (entry_id, TaskEvent.created(task).to_wire()),
        (entries[1][0], TaskEvent.completed(canceled).to_wire()),
    ]


async def test_redis_restarted_empty_tasks_get_answers_from_temporal_and_running_tasks_finish(
    own_redis: tuple[Server, str],
    own_redis_client: Redis,
    sse_client: httpx.AsyncClient,
    temporal_address: str,
    temporal_client: Client,
    tmp_path: Path,
) -> None:
    redis_server, url = own_redis
    queue = queue_name("fault-redis")
    worker = start_worker(queue, temporal_address, url, tmp_path / "worker.log")
    try:
        with gateway_process(
            tmp_path, temporal_address=temporal_address, redis_url=url, task_queue=queue
        ) as gateway:
            # Sent without waiting, and read back from Redis: the gateway has not seen them end, so
            # it does not remember them (it keeps the terminal tasks it read for a minute).
            done = [
                await finished(sse_client, gateway.url, temporal_client, own_redis_client, t)
                for t in ("one", "two")
            ]
            assert [task["status"]["state"] for task in done] == ["completed", "completed"]
            running = [await start_slow(sse_client, gateway.url, TEXT, 0.2) for _ in range(2)]
            for task_id in running:
                await eventlog.read_until(
                    own_redis_client, task_id, eventlog.count("task.progress", 2), 10
                )
            await asyncio.to_thread(redis_server.restart)
            # The test's own pooled connections went with the old server (redis-py 8 does not retry
            # a command on a dropped connection by default).
            await own_redis_client.connection_pool.disconnect()
            assert await own_redis_client.exists(*(task_snapshot_key(t["id"]) for t in done)) == 0

            await after_redis_restart(sse_client, gateway, own_redis_client, done, running)
            for task_id in running:
                status = await asyncio.wait_for(final_status(temporal_client, task_id), 30)
                assert status["state"] == "completed"
                got = (await rpc(sse_client, gateway.url, "tasks/get", {"id": task_id}))["result"]
                assert got["status"]["state"] == "completed"
                assert text_of(got) == TEXT
    finally:
        worker.stop()


async def finished(
    client: httpx.AsyncClient, url: str, temporal: Client, redis: Redis, text: str
) -> dict[str, Any]:
    """A task sent without waiting, once its workflow has closed, as Redis holds it."""
    params = {"message": echo_message(text), "configuration": {"blocking": False}}
    task_id = (await rpc(client, url, "message/send", params))["result"]["id"]
    await final_status(temporal, task_id)
    snapshot: dict[str, Any] = orjson.loads(await redis.get(task_snapshot_key(task_id)) or b"null")
    return snapshot


async def after_redis_restart(
    client: httpx.AsyncClient,
    gateway: GatewayProcess,
    redis: Redis,
    done: list[dict[str, Any]],
    running: list[str],
) -> None:
    # The workflow still knows each task's ids and status; the content (messages, artifacts) lived
    # in the Redis that was lost.
    for task in done:
        got = await rpc(client, gateway.url, "tasks/get", {"id": task["id"]})
        kept = {
            "id": task["id"],
            "contextId": task["contextId"],
            "status": task["status"],
            "kind": "task",
        }
        assert got == {"jsonrpc": "2.0", "id": 1, "result": {**kept, "history": []}}
    for task_id in running:
        got = await rpc(client, gateway.url, "tasks/get", {"id": task_id})
        assert got["result"]["id"] == task_id
        assert got["result"]["status"]["state"] in ("working", "completed")
    message = echo_message("after the restart", chunks=3, delay=0.05)
    fresh = await read_stream(
        client,
        "POST",
        gateway.url,
        json=rpc_body("message/stream", {"message": message}),
        deadline=30,
    )
    frames = checked(fresh)
    results = [frame.data["result"] for frame in frames]
    kinds = ["task", "status-update", "artifact-update", "artifact-update", "artifact-update"]
    assert [r["kind"] for r in results] == [*kinds, "status-update"]
    assert results[-1]["status"]["state"] == "completed"
    assert as_log(frames) == expected_frames(await eventlog.log_entries(redis, results[0]["id"]))


async def test_temporal_restarted_mid_run_running_tasks_resume_and_finish(
    own_redis: tuple[Server, str],
    own_redis_client: Redis,
    sse_client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    _, redis_url = own_redis
    port = free_port(HOST)
    log = (tmp_path / "temporal.log").open("ab")

    def start() -> ManagedProcess:
        return start_temporal(host=HOST, port=port, db_file=tmp_path / "temporal.db", log=log)

    try:
        temporal = Server(start)
    except DevStackError as err:
        log.close()
        unavailable(f"Temporal dev server unavailable: {err}")
    address = f"{HOST}:{port}"
    queue = queue_name("fault-temporal")
    worker = start_worker(queue, address, redis_url, tmp_path / "worker.log")
    try:
        with gateway_process(
            tmp_path, temporal_address=address, redis_url=redis_url, task_queue=queue
        ) as gateway:
            running = [await start_slow(sse_client, gateway.url, TEXT, 0.2) for _ in range(3)]
            for task_id in running:
                await eventlog.read_until(
                    own_redis_client, task_id, eventlog.count("task.progress", 2), 10
                )
            await asyncio.to_thread(temporal.restart)

            for task_id in running:
                events = await eventlog.read_until(
                    own_redis_client, task_id, eventlog.final, deadline_seconds=40
                )
                assert events[-1]["task"]["status"]["state"] == "completed"
                assert text_of(events[-1]["task"]) == TEXT
                got = (await rpc(sse_client, gateway.url, "tasks/get", {"id": task_id}))["result"]
                assert got == events[-1]["task"]
            client = await Client.connect(address, data_converter=pydantic_data_converter)
            for task_id in running:
                status = await asyncio.wait_for(final_status(client, task_id), 10)
                assert status["state"] == "completed"
            after = await rpc(
                sse_client, gateway.url, "message/send", {"message": echo_message("still here")}
            )
            assert after["result"]["status"]["state"] == "completed"
            assert text_of(after["result"]) == "still here"
    finally:
        worker.stop()
        temporal.process.stop()
        log.close()
