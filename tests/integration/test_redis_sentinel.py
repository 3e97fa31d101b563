"""The stack behind Redis Sentinel: a primary, its replica and three sentinels on loopback
(`tests.redis_engines`); a gateway and a worker as deployed, with `REDIS_SENTINELS` and
`A2A_REDIS_SENTINEL_MASTER` (and no Redis address of their own). Send and stream work; then the primary
is killed mid-stream, the sentinels promote the replica, and the client gets the whole turn (a resume
from the log where its stream broke), nothing lost that the workflow holds."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.devstack.processes import ManagedProcess
from tests.integration.sse import (
    Frame,
    GatewayProcess,
    data_frames,
    echo_message,
    gateway_process,
    read_stream,
    rpc_body,
    stream_frames,
)
from tests.integration.test_faults import as_results, progress, rpc
from tests.integration.test_streaming import checked
from tests.integration.test_worker_crash import start_worker
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
def sentinel_env(sentinel: SentinelNodes) -> Iterator[dict[str, str]]:
    env = {"REDIS_SENTINELS": sentinel.sentinel_list, "A2A_REDIS_SENTINEL_MASTER": sentinel.name}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        yield env


@pytest.fixture(scope="module")
def sentinel_worker(
    tmp_path_factory: pytest.TempPathFactory, temporal_address: str, sentinel_env: dict[str, str]
) -> Iterator[ManagedProcess]:
    log = tmp_path_factory.mktemp("sentinel-worker") / "worker.log"
    worker = start_worker(QUEUE, temporal_address, URL, log, sentinel_env)
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture(scope="module")
def gateways(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_address: str,
    sentinel_env: dict[str, str],
    sentinel_worker: ManagedProcess,
) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    def launch(name: str) -> contextlib.AbstractContextManager[GatewayProcess]:
        return gateway_process(
            tmp_path_factory.mktemp(f"sentinel-gateway-{name}"),
            temporal_address=temporal_address,
            redis_url=URL,
            task_queue=QUEUE,
            env=sentinel_env,
            name=name,
        )

    with launch("a") as first, launch("b") as second:
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
    tmp_path: Path,
) -> None:
    """Last in this module: it leaves the topology without a replica."""
    first, second = gateways
    text = "abcdefghijklmnopqrstuvwxyz0123"
    message = echo_message(text, chunks=len(text), delay=0.2)
    frames: list[Frame] = []
    killed = False
    task_id = ""
    async with (
        asyncio.timeout(60),
        sse_client.stream(
            "POST", first.url, json=rpc_body("message/stream", {"message": message})
        ) as response,
    ):
        try:
            async for frame in stream_frames(response):
                frames.append(frame)
                if not killed and len(progress(as_results(frames))) == 5:
                    task_id = frames[0].data["result"]["id"]
                    sentinel.primary.process.kill()
                    killed = True
        except httpx.RemoteProtocolError:
            pass
    assert killed
    await asyncio.to_thread(
        wait_until,
        lambda: sentinel.current_primary() == sentinel.replica.port,
        30,
        "the sentinels to promote the replica",
    )
    results = as_results(frames)
    if results[-1].get("final") is not True:
        # The stream ended early (its log's server went away): resume it on the other gateway.
        last_id = [frame.id for frame in frames if frame.id][-1]
        resumed = await read_stream(
            sse_client,
            "POST",
            second.url,
            json=rpc_body("tasks/resubscribe", {"id": task_id}),
            headers={"Last-Event-ID": last_id},
        )
        results += [frame.data["result"] for frame in data_frames(resumed)]
    assert (results[-1]["kind"], results[-1]["status"]["state"]) == ("status-update", "completed")
    chunks = progress(results)
    restart = max(i for i, (append, _) in enumerate(chunks) if not append)
    assert "".join(chunk for _, chunk in chunks[restart:]) == text
    task = (await rpc(sse_client, second.url, "tasks/get", {"id": task_id}))["result"]
    assert task["status"]["state"] == "completed"
    assert "".join(p["text"] for p in task["artifacts"][0]["parts"]) == text
