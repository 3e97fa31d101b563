"""The snapshot reads of `tasks/get` on a real Redis: the pipelined connection (replies matched to
callers in order, through errors, abandoned calls, a lost connection, AUTH and SELECT) and the
gateway's memory of terminal tasks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import orjson
import pytest
from redis.asyncio import Redis

import gateway.tasks.store
from gateway.tasks.pipelined import PipelinedReader, PipelineError, pipelined_address
from gateway.tasks.store import TaskStore
from protocol import Task, TaskState, TaskStatus, task_snapshot_key


@pytest.fixture
async def reader(redis_url: str) -> AsyncIterator[PipelinedReader]:
    address = pipelined_address(redis_url)
    assert address is not None
    pipelined = PipelinedReader(address)
    yield pipelined
    pipelined.close()


def key() -> str:
    return f"test:pipelined:{uuid.uuid4()}"


async def test_concurrent_gets_each_get_their_own_value(
    redis: Redis, reader: PipelinedReader
) -> None:
    keys = [key() for _ in range(200)]
    for index, name in enumerate(keys[::2]):
        await redis.set(name, f"value {index}")
    values = await asyncio.gather(*(reader.get(name) for name in keys))
    assert values == [
        f"value {index // 2}".encode() if index % 2 == 0 else None for index in range(200)
    ]


async def test_an_error_reply_fails_its_caller_only(redis: Redis, reader: PipelinedReader) -> None:
    listed, plain = key(), key()
    await redis.rpush(listed, "x")
    await redis.set(plain, "after")
    results = await asyncio.gather(reader.get(listed), reader.get(plain), return_exceptions=True)
    assert isinstance(results[0], PipelineError)
    assert str(results[0]).startswith("Redis answered: WRONGTYPE")
    assert results[1] == b"after"


async def test_an_abandoned_call_does_not_shift_the_replies(
    redis: Redis, reader: PipelinedReader
) -> None:
    first, second = key(), key()
    await redis.set(first, "first")
    await redis.set(second, "second")
    assert await reader.get(first) == b"first"  # connected
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0):
            await reader.get(first)
    assert await reader.get(second) == b"second"
    assert await reader.get(first) == b"first"


async def test_a_killed_connection_fails_its_callers_and_the_next_call_reconnects(
    redis: Redis, reader: PipelinedReader
) -> None:
    name = key()
    await redis.set(name, "v")
    assert await reader.get(name) == b"v"
    # Only the reader's connection: the session's workers share this Redis.
    connection = reader._connection
    assert connection is not None
    assert connection._transport is not None
    host, port = connection._transport.get_extra_info("sockname")[:2]
    assert await redis.client_kill_filter(addr=f"{host}:{port}") == 1
    for _ in range(500):  # until the reader has seen the connection close
        if connection.lost:
            break
        await asyncio.sleep(0.01)
    assert connection.lost
    assert await reader.get(name) == b"v"
    assert reader._connection is not connection


async def test_auth_and_database_from_the_url(redis: Redis, redis_url: str) -> None:
    user, password, name = f"reader-{uuid.uuid4().hex[:8]}", "s3cret/pass", key()
    await redis.acl_setuser(
        user, enabled=True, passwords=[f"+{password}"], keys=["*"], commands=["+@all"]
    )
    server = urlsplit(redis_url).netloc
    other = Redis.from_url(f"redis://{server}/3")
    try:
        await other.set(name, "in db 3")
        address = pipelined_address(f"redis://{user}:s3cret%2Fpass@{server}/3")
        assert address is not None
        pipelined = PipelinedReader(address)
        assert await pipelined.get(name) == b"in db 3"
        pipelined.close()
        address["password"] = "wrong"
        refused = PipelinedReader(address)
        with pytest.raises(PipelineError, match="WRONGPASS"):
            await refused.get(name)
        refused.close()
    finally:
        await other.delete(name)
        await other.aclose()
        await redis.acl_deluser(user)


def test_which_urls_are_served() -> None:
    assert pipelined_address("redis://h:7000/2") == {
        "db": 2,
        "username": None,
        "password": None,
        "host": "h",
        "port": 7000,
    }
    assert pipelined_address("redis://u:p%40ss@h") == {
        "db": 0,
        "username": "u",
        "password": "p@ss",
        "host": "h",
        "port": 6379,
    }
    assert pipelined_address("unix:///run/redis.sock?db=4") == {
        "db": 4,
        "username": None,
        "password": None,
        "path": "/run/redis.sock",
    }
    assert pipelined_address("rediss://h:6380/0") is None
    assert pipelined_address("redis://h/notanumber") is None


def snapshot(task_id: str, state: TaskState) -> bytes:
    task = Task(id=task_id, contextId="c", status=TaskStatus(state=state))
    return orjson.dumps(task.to_wire())


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "redis-py"])
async def test_a_terminal_task_is_remembered_and_a_running_one_is_read_each_time(
    redis: Redis,
    reader: PipelinedReader,
    pipelined: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = TaskStore(redis, ttl_seconds=60, timeout=5, reader=reader if pipelined else None)
    running, done = str(uuid.uuid4()), str(uuid.uuid4())
    await redis.set(task_snapshot_key(running), snapshot(running, TaskState.WORKING))
    await redis.set(task_snapshot_key(done), snapshot(done, TaskState.COMPLETED))
    assert (await store.get_wire(running) or {})["status"] == {"state": "working"}
    assert (await store.get_wire(done) or {})["status"] == {"state": "completed"}

    # Only a worker or the workflow writes snapshots, and never over a terminal one; this stands in
    # for a change that would be visible were the terminal task read again.
    await redis.set(task_snapshot_key(running), snapshot(running, TaskState.INPUT_REQUIRED))
    await redis.delete(task_snapshot_key(done))
    assert (await store.get_wire(running) or {})["status"] == {"state": "input-required"}
    assert (await store.get_wire(done) or {})["status"] == {"state": "completed"}

    monkeypatch.setattr(gateway.tasks.store, "TERMINAL_CACHE_SECONDS", 0.0)
    other = str(uuid.uuid4())
    await redis.set(task_snapshot_key(other), snapshot(other, TaskState.CANCELED))
    assert (await store.get_wire(other) or {})["status"] == {"state": "canceled"}
    await redis.delete(task_snapshot_key(other))
    assert await store.get_wire(other) is None
