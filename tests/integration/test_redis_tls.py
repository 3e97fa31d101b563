"""The stack on Redis over TLS with a password (`rediss://:password@host:port/db?ssl_ca_certs=...`,
no plain port open): a gateway and a worker as deployed send, stream and cancel through it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.sse import (
    GatewayProcess,
    echo_message,
    gateway_process,
    read_stream,
    rpc_body,
)
from tests.integration.test_faults import progress, rpc
from tests.integration.test_snapshot_reads import PrivateRedis, private_redis
from tests.integration.test_streaming import checked
from tests.integration.test_worker_crash import running_worker
from tests.waiting import eventually

__all__ = ["private_redis"]
QUEUE = f"tls-redis-echo-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def url(private_redis: PrivateRedis) -> str:
    return private_redis.urls(db=4)["rediss"]


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, temporal_address: str, url: str
) -> Iterator[GatewayProcess]:
    log = tmp_path_factory.mktemp("tls-redis-worker") / "worker.log"
    with (
        running_worker(QUEUE, temporal_address, url, log),
        gateway_process(
            tmp_path_factory.mktemp("tls-redis-gateway"),
            temporal_address=temporal_address,
            redis_url=url,
            task_queue=QUEUE,
        ) as running,
    ):
        yield running


async def test_send_stream_and_cancel_over_tls_to_redis(
    gateway: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    sent = await rpc(sse_client, gateway.url, "message/send", {"message": echo_message("hi")})
    assert sent["result"]["status"]["state"] == "completed"
    message = echo_message("abc", chunks=3, delay=0.05)
    streamed = await read_stream(
        sse_client, "POST", gateway.url, json=rpc_body("message/stream", {"message": message})
    )
    results = [frame.data["result"] for frame in checked(streamed)]
    assert progress(results) == [(False, "a"), (True, "b"), (True, "c")]
    slow = echo_message("slow", chunks=4, delay=30)
    params = {"message": slow, "configuration": {"blocking": False}}
    task_id = (await rpc(sse_client, gateway.url, "message/send", params))["result"]["id"]

    async def working() -> bool:
        got = await rpc(sse_client, gateway.url, "tasks/get", {"id": task_id})
        return bool(got["result"]["status"]["state"] == "working")

    await eventually(working, 20, what="the slow turn to start")
    canceled = await rpc(sse_client, gateway.url, "tasks/cancel", {"id": task_id})
    assert canceled["result"]["status"]["state"] == "canceled"
