"""The stack on a real Redis Cluster: three masters, each with a replica, on loopback ports
(`tests.redis_engines`), gateways and workers as deployed (`A2A_REDIS_CLUSTER=true`, `REDIS_URL` one
node). The streaming, resume and fault tests of `test_streaming` and `test_faults` run again here with
this module's fixtures; then what only a cluster has: a context's history read across slots, rate limits, a listing,
a cancel over the cluster's pub/sub (the workers' classic channel; each task's own channel is a
sharded one, on the node that serves the task's slot), and a master killed mid-stream with its
replica taking over."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from config.redis_clients import RedisTarget
from gateway.access.rate_limit import RateLimiter
from gateway.devstack.processes import ManagedProcess
from protocol import (
    Message,
    RateLimitedError,
    Task,
    TaskState,
    TaskStatus,
    TextPart,
    rate_limit_key,
    task_channel,
    task_snapshot_key,
)
from tests.integration.conftest import LaunchGateway, gateway_launcher
from tests.integration.failover import resume_and_check, stream_and_kill
from tests.integration.sse import (
    Frame,
    GatewayProcess,
    SSEResponse,
    echo_message,
    rpc_body,
    stream_frames,
)
from tests.integration.test_faults import (
    as_results,
    progress,
    rpc,
    test_gateway_killed_mid_stream_client_resumes_on_another_exactly_once,
    test_worker_killed_mid_stream_client_sees_artifact_restart_then_text_once,
)
from tests.integration.test_streaming import (
    checked,
    test_client_disconnect_does_not_cancel_the_task,
    test_cut_off_stream_resumes_after_last_event_id_exactly_once,
    test_follow_up_message_stream_continues_an_input_required_task,
    test_message_stream_five_chunks_exact_frames,
    test_resubscribe_finished_task_snapshot_then_close,
    test_resubscribe_unknown_task_one_error_event_then_close,
    test_stream_started_on_one_gateway_resubscribed_on_the_other_gets_the_rest,
)
from tests.integration.test_worker_crash import running_worker
from tests.redis_engines import RedisClusterNodes, redis_cluster, wait_until
from workers.publisher import EventPublisher

# Run again here, on the cluster.
__all__ = [
    "test_client_disconnect_does_not_cancel_the_task",
    "test_cut_off_stream_resumes_after_last_event_id_exactly_once",
    "test_follow_up_message_stream_continues_an_input_required_task",
    "test_gateway_killed_mid_stream_client_resumes_on_another_exactly_once",
    "test_message_stream_five_chunks_exact_frames",
    "test_resubscribe_finished_task_snapshot_then_close",
    "test_resubscribe_unknown_task_one_error_event_then_close",
    "test_stream_started_on_one_gateway_resubscribed_on_the_other_gets_the_rest",
    "test_worker_killed_mid_stream_client_sees_artifact_restart_then_text_once",
]

QUEUE = f"cluster-echo-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    with redis_cluster(tmp_path_factory.mktemp("cluster"), masters=3, replicas=1) as nodes:
        yield nodes


@pytest.fixture(scope="module", autouse=True)
def cluster_env(cluster: RedisClusterNodes) -> Iterator[None]:
    """Every gateway and worker this module starts (they inherit the environment) is a cluster client."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("A2A_REDIS_CLUSTER", "true")
        yield


@pytest.fixture(scope="module")
def redis_url(cluster: RedisClusterNodes) -> str:
    return cluster.url


@pytest.fixture(scope="module")
async def redis(cluster: RedisClusterNodes) -> AsyncIterator[Redis]:
    client = RedisTarget(cluster.url, cluster=True).client(max_connections=32)
    yield client
    await client.aclose()


@pytest.fixture(scope="module")
def cluster_worker(
    tmp_path_factory: pytest.TempPathFactory, temporal_address: str, cluster: RedisClusterNodes
) -> Iterator[ManagedProcess]:
    log = tmp_path_factory.mktemp("cluster-worker") / "worker.log"
    with running_worker(QUEUE, temporal_address, cluster.url, log) as worker:
        yield worker


@pytest.fixture(scope="module")
def launch_gateway(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_address: str,
    cluster: RedisClusterNodes,
    cluster_worker: ManagedProcess,
) -> LaunchGateway:
    return gateway_launcher(
        tmp_path_factory,
        temporal_address=temporal_address,
        redis_url=cluster.url,
        task_queue=QUEUE,
        prefix="cluster-gateway",
    )


@pytest.fixture(scope="module")
def gateway_a(launch_gateway: LaunchGateway) -> Iterator[GatewayProcess]:
    with launch_gateway("a") as gateway:
        yield gateway


@pytest.fixture(scope="module")
def gateway_b(launch_gateway: LaunchGateway) -> Iterator[GatewayProcess]:
    with launch_gateway("b") as gateway:
        yield gateway


def spread(cluster: RedisClusterNodes, count: int) -> list[str]:
    """`count` task ids whose keys lie on different masters, in turn."""
    ids: list[str] = []
    ports: list[int] = []
    while len(ids) < count:
        task_id = str(uuid.uuid4())
        port = cluster.master_of(task_snapshot_key(task_id)).port
        if port not in ports[-len(cluster.masters) + 1 :]:
            ids.append(task_id)
            ports.append(port)
    return ids


async def test_a_context_history_is_read_across_slots(
    redis: Redis, cluster: RedisClusterNodes
) -> None:
    publisher = EventPublisher(redis, stream_max_length=100, ttl_seconds=60)
    context_id = f"ctx-{uuid.uuid4().hex[:8]}"
    tasks = []
    for index, task_id in enumerate(spread(cluster, 3)):
        message = Message(
            role="user",
            parts=[TextPart(text=f"turn {index}")],
            messageId=f"m-{index}",
            taskId=task_id,
            contextId=context_id,
        )
        task = Task(
            id=task_id,
            contextId=context_id,
            status=TaskStatus(state=TaskState.COMPLETED),
            history=[message],
        )
        await redis.set(task_snapshot_key(task_id), task.model_dump_json(exclude_none=True))
        await publisher.join_context(task)
        tasks.append(task)
    assert len({cluster.master_of(task_snapshot_key(t.id)).port for t in tasks}) == 3
    history = await publisher.context_history(tasks[2], limit=10)
    assert [m.parts[0] for m in history] == [TextPart(text="turn 0"), TextPart(text="turn 1")]


async def test_rate_limits_hold_per_caller_on_every_slot(
    redis: Redis, cluster: RedisClusterNodes
) -> None:
    limiter = RateLimiter(redis, per_second=0.01, burst=2, timeout=5)
    # Two callers on the slots of each node that serves some.
    by_master: dict[int, list[str]] = {}
    for _ in range(1000):
        caller = f"caller-{uuid.uuid4().hex[:8]}"
        served = by_master.setdefault(cluster.master_of(rate_limit_key(caller)).port, [])
        if len(served) < 2:
            served.append(caller)
        if sum(map(len, by_master.values())) == 2 * len(cluster.masters):
            break
    assert len(by_master) == len(cluster.masters)
    callers = [caller for served in by_master.values() for caller in served]
    for caller in callers:
        await limiter.admit(caller)
        await limiter.admit(caller)
        with pytest.raises(RateLimitedError) as refused:
            await limiter.admit(caller)
        assert refused.value.retry_after == 100


async def test_tasks_are_listed_newest_first_across_slots(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    context_id = f"list-{uuid.uuid4().hex[:8]}"
    sent = []
    for text in ("one", "two", "three"):
        message = {**echo_message(text), "contextId": context_id}
        body = await rpc(sse_client, gateway_a.url, "message/send", {"message": message})
        sent.append(body["result"]["id"])
    response = await sse_client.post(
        gateway_a.url,
        json=rpc_body("ListTasks", {"contextId": context_id}),
        headers={"A2A-Version": "1.0"},
    )
    listed = response.json()["result"]
    assert [task["id"] for task in listed["tasks"]] == sent[::-1]
    assert [task["status"]["state"] for task in listed["tasks"]] == ["TASK_STATE_COMPLETED"] * 3
    assert listed["totalSize"] == 3


async def test_a_cancel_reaches_the_running_turn_over_the_cluster(
    gateway_a: GatewayProcess,
    gateway_b: GatewayProcess,
    sse_client: httpx.AsyncClient,
    cluster: RedisClusterNodes,
) -> None:
    message = echo_message("abcdefghij", chunks=10, delay=1.0)
    frames: list[Frame] = []
    canceled: dict[str, Any] | None = None
    async with (
        asyncio.timeout(30),
        sse_client.stream(
            "POST", gateway_a.url, json=rpc_body("message/stream", {"message": message})
        ) as response,
    ):
        async for frame in stream_frames(response):
            frames.append(frame)
            if canceled is None and len(progress(as_results(frames))) == 1:
                task_id = frames[0].data["result"]["id"]
                # The stream's gateway holds the task's channel as a sharded one, on the node that
                # serves the task's slot.
                channel = task_channel(task_id)
                node = cluster.master_of(channel)
                assert node.command("PUBSUB", "SHARDCHANNELS", channel) == [channel.encode()]
                assert node.command("PUBSUB", "CHANNELS", channel) == []
                canceled = await rpc(sse_client, gateway_b.url, "tasks/cancel", {"id": task_id})
    assert canceled is not None
    assert canceled["result"]["status"]["state"] == "canceled"
    results = [
        frame.data["result"] for frame in checked(SSEResponse(200, response.headers, frames))
    ]
    assert [r["kind"] for r in results] == [
        "task",
        "status-update",
        "artifact-update",
        "status-update",
    ]
    assert (results[-1]["status"]["state"], results[-1]["final"]) == ("canceled", True)


async def test_a_master_killed_mid_stream_its_replica_takes_over_and_nothing_is_lost(
    gateway_a: GatewayProcess,
    gateway_b: GatewayProcess,
    sse_client: httpx.AsyncClient,
    cluster: RedisClusterNodes,
) -> None:
    """Last in this module: it leaves the cluster with a master that has no replica."""
    killed: list[int] = []

    def kill_master(task_id: str) -> None:
        master = cluster.master_of(task_snapshot_key(task_id))
        killed.append(master.port)
        master.process.kill()

    task_id, frames = await stream_and_kill(sse_client, gateway_a.url, kill_master)
    await asyncio.to_thread(wait_until, cluster.healthy, 30, "the replica to take over")
    assert cluster.master_of(task_snapshot_key(task_id)).port not in killed
    await resume_and_check(sse_client, gateway_b.url, task_id, frames)
