"""The fan-out hub and task feeds on a real Redis: live delivery, and no loss across a pub/sub reconnect."""

from __future__ import annotations

import asyncio
import uuid
from functools import partial
from typing import cast

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from config.redis_clients import RedisTarget
from gateway.access.rate_limit import RateLimiter
from gateway.devstack.processes import free_port
from gateway.streaming.feed import TaskFeed
from gateway.streaming.hub import Hub
from gateway.streaming.log import EventLog, LogEntry
from gateway.tasks.store import TaskStore
from protocol import Artifact, Task, TaskEvent, TaskState, TaskStatus, TextPart, task_channel
from tests.waiting import eventually
from workers.publisher import EventPublisher


def new_task() -> Task:
    return Task(
        id=str(uuid.uuid4()), contextId="c", status=TaskStatus(state=TaskState.WORKING), history=[]
    )


async def publish_chunks(publisher: EventPublisher, task: Task, texts: list[str]) -> list[str]:
    ids = []
    for text in texts:
        artifact = Artifact(artifactId="a", parts=[TextPart(text=text)])
        event = TaskEvent.progress(task, artifact, append=True, last_chunk=False)
        ids.append(await publisher.publish(event, task))
    return [entry_id for entry_id in ids if entry_id is not None]


async def collect(feed: TaskFeed, count: int) -> list[LogEntry]:
    got: list[LogEntry] = []
    async with asyncio.timeout(20):
        while len(got) < count:
            got += await feed.next(1.0)
    return got


async def test_feed_gets_every_event_once_across_a_pubsub_reconnect(
    redis: Redis, redis_url: str
) -> None:
    publisher = EventPublisher(redis, stream_max_length=1000, ttl_seconds=60)
    log = EventLog(redis, timeout=5)
    hub = Hub(redis_url, buffer_events=100, reconnect_delay=0.2)
    await hub.start(connect_wait=5)
    task = new_task()
    try:
        created = await publisher.publish(TaskEvent.created(task), task)
        before = [created, *await publish_chunks(publisher, task, ["a", "b"])]
        async with hub.subscribe(task_channel(task.id)) as subscription:
            feed = TaskFeed(log, subscription, task.id, "0", close_on_overflow=True)
            assert [e.id for e in (await feed.first()).entries] == before
            live = await publish_chunks(publisher, task, ["c"])
            assert [e.id for e in await collect(feed, 1)] == live
            killed = await redis.client_kill_filter(_type="pubsub")
            assert killed >= 1
            # Published while the hub has no subscription: pub/sub drops these; the log has them.
            missed = await publish_chunks(publisher, task, ["d", "e", "f"])
            got = await collect(feed, 3)
            after = await publish_chunks(publisher, task, ["g"])
            got += await collect(feed, 1)
        assert [e.id for e in got] == [*missed, *after]
        assert [e.event["artifact"]["parts"][0]["text"] for e in got] == ["d", "e", "f", "g"]
        assert hub.channel_count == 0
    finally:
        await hub.close()


async def test_hub_holds_a_channel_while_anyone_listens(redis: Redis, redis_url: str) -> None:
    hub = Hub(redis_url, buffer_events=10)
    await hub.start(connect_wait=5)
    channel = task_channel(str(uuid.uuid4()))
    try:
        async with hub.subscribe(channel), hub.subscribe(channel):
            assert hub.channel_count == 1
            assert await redis.pubsub_numsub(channel) == [(channel.encode(), 1)]
        assert hub.channel_count == 0
        # The hub's writer task sends UNSUBSCRIBE after the last listener leaves.
        await eventually(
            lambda: redis.pubsub_numsub(channel),
            5,
            what=f"Redis to count no subscriber of {channel}",
            until=lambda counts: counts == [(channel.encode(), 0)],
        )
    finally:
        await hub.close()


async def test_subscribe_gives_up_when_redis_does_not_answer() -> None:
    hub = Hub(f"redis://127.0.0.1:{free_port('127.0.0.1')}/0", buffer_events=10)
    await hub.start(connect_wait=0.1)
    try:
        with pytest.raises(TimeoutError):
            async with hub.subscribe("a2a:task:{t}:wake", confirm_within=0.2):
                pass
        assert hub.channel_count == 0
    finally:
        await hub.close()


async def test_sharded_subscribe_gives_up_when_no_cluster_node_answers() -> None:
    target = RedisTarget(f"redis://127.0.0.1:{free_port('127.0.0.1')}/0", cluster=True)
    cluster = target.client(max_connections=4)
    hub = Hub(
        partial(target.dedicated_pool, cluster, protocol=2),
        buffer_events=10,
        cluster=cast(RedisCluster, cluster),
        node_pools=partial(target.node_pool, protocol=2),
    )
    await hub.start(connect_wait=0.1)
    try:
        with pytest.raises(TimeoutError, match="no Redis node is known to serve channel"):
            async with hub.subscribe("a2a:task:{t}:wake", confirm_within=0.2):
                pass
        assert hub.channel_count == 0
    finally:
        await hub.close()
        await cluster.aclose()


async def test_a_cluster_that_cannot_be_reached_degrades_as_a_lost_server_does() -> None:
    """Reads answer "Redis cannot say" (the gateway then asks the workflow) and the rate limit lets
    requests through, as with one server down, rather than raising the cluster client's own error."""
    target = RedisTarget(f"redis://127.0.0.1:{free_port('127.0.0.1')}/0", cluster=True)
    cluster = target.client(max_connections=4)
    try:
        store = TaskStore(cluster, reader=None, ttl_seconds=60, timeout=5)
        assert await store.get_wire("t") is None
        assert await EventLog(cluster, timeout=5).last_event_id("t") is None
        await RateLimiter(cluster, per_second=1, burst=1, timeout=5).admit("caller")
    finally:
        await cluster.aclose()
