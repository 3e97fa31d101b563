"""The stack behind Redis Sentinel: a primary, its replica and three sentinels on loopback
(`tests.redis_engines`); a gateway and a worker as deployed, with `REDIS_SENTINELS` and
`A2A_REDIS_SENTINEL_MASTER` (and no Redis address of their own). Send and stream work; then the primary
is killed mid-stream, the sentinels promote the replica, and the client gets the whole turn (a resume
from the log where its stream broke), nothing lost that the workflow holds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest

from gateway.devstack.processes import ManagedProcess
from tests.integration.conftest import gateway_launcher
from tests.integration.failover import resume_and_check, stream_and_kill
from tests.integration.sse import (
    GatewayProcess,
    echo_message,
    read_stream,
    rpc_body,
)
from tests.integration.test_faults import progress, rpc
from tests.integration.test_streaming import checked
from tests.integration.test_worker_crash import running_worker
from tests.redis_engines import SentinelNodes, redis_sentinel, wait_until

QUEUE = f"sentinel-echo-{uuid.uuid4().hex[:8]}"
# Where the primary is comes from the sentinels; the URL gives only the database (and would give the
# user, password and TLS).
URL = "redis://sentinel-named-primary/0"


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelNodes]:
    with redis_sentinel(tmp_path_factory.mktemp("sentinel")) as nodes:
        yield nodes


@pytest.fixture(scope="module")
def sentinel_env(sentinel: SentinelNodes) -> dict[str, str]:
    return {"REDIS_SENTINELS": sentinel.sentinel_list, "A2A_REDIS_SENTINEL_MASTER": sentinel.name}


@pytest.fixture(scope="module")
def sentinel_worker(
    tmp_path_factory: pytest.TempPathFactory, temporal_address: str, sentinel_env: dict[str, str]
) -> Iterator[ManagedProcess]:
    log = tmp_path_factory.mktemp("sentinel-worker") / "worker.log"
    with running_worker(QUEUE, temporal_address, URL, log, sentinel_env) as worker:
        yield worker


@pytest.fixture(scope="module")
def gateways(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_address: str,
    sentinel_env: dict[str, str],
    sentinel_worker: ManagedProcess,
) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    launch = gateway_launcher(
        tmp_path_factory,
        temporal_address=temporal_address,
        redis_url=URL,
        task_queue=QUEUE,
        prefix="sentinel-gateway",
    )
    with launch("a", sentinel_env) as first, launch("b", sentinel_env) as second:
        yield first, second


async def test_send_and_stream_through_the_primary_sentinel_names(
    gateways: tuple[GatewayProcess, GatewayProcess], sse_client: httpx.AsyncClient
) -> None:
    first, second = gateways
    sent = await rpc(sse_client, first.url, "message/send", {"message": echo_message("hi")})
    assert sent["result"]["status"]["state"] == "completed"
    got = await rpc(sse_client, second.url, "tasks/get", {"id": sent["result"]["id"]})
    assert got["result"] == sent["result"]
    message = echo_message("abc", chunks=3, delay=0.05)
    streamed = await read_stream(
        sse_client, "POST", first.url, json=rpc_body("message/stream", {"message": message})
    )
    results = [frame.data["result"] for frame in checked(streamed)]
    assert progress(results) == [(False, "a"), (True, "b"), (True, "c")]
    assert results[-1]["status"]["state"] == "completed"


async def test_a_primary_killed_mid_stream_the_replica_takes_over_and_nothing_is_lost(
    gateways: tuple[GatewayProcess, GatewayProcess],
    sse_client: httpx.AsyncClient,
    sentinel: SentinelNodes,
) -> None:
    """Last in this module: it leaves the topology without a replica."""
    first, second = gateways
    task_id, frames = await stream_and_kill(
        sse_client, first.url, lambda _: sentinel.primary.process.kill()
    )
    await asyncio.to_thread(
        wait_until,
        lambda: sentinel.current_primary() == sentinel.replica.port,
        30,
        "the sentinels to promote the replica",
    )
    await resume_and_check(sse_client, second.url, task_id, frames)
