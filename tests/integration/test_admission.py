"""Admission under overload (issue 18): when Temporal does not take new work, a send waits the
configured time for a place, then is answered -32000 "server busy" with Retry-After; the refused
message is not lost (its id is free, and sent again once Temporal keeps up, it runs)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import httpx
from redis.asyncio import Redis
from temporalio.client import Client

from gateway.settings import GatewaySettings
from gateway.tasks.store import TaskStore
from protocol import Message
from protocol.keys import message_task_key
from tests.a2a_schema import assert_valid_response
from tests.conftest import app_client
from tests.integration.sse import echo_message, rpc_body
from workers import WorkerSettings, create_worker

BUSY = (
    "Server busy: 1 task starts and messages are waiting on Temporal at this gateway process, "
    "and none finished within 0.3 s; retry later"
)


async def post(http: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await http.post("/", json=body, headers={"accept": "application/json"})


async def test_a_send_beyond_the_pending_starts_is_turned_away_then_runs_once_temporal_keeps_up(
    gateway_settings: GatewaySettings,
    worker_settings: WorkerSettings,
    temporal_client: Client,
    redis: Redis,
) -> None:
    # A queue no worker polls yet: Temporal takes the first start and never answers it.
    queue = f"test-admission-{uuid.uuid4().hex[:8]}"
    settings = gateway_settings.model_copy(
        update={"task_queue": queue, "max_pending_starts": 1, "admission_wait_seconds": 0.3}
    )
    stuck_message = echo_message("first")
    async with app_client(settings) as http:
        stuck = asyncio.create_task(
            post(http, rpc_body("message/send", {"message": stuck_message}))
        )
        await asyncio.sleep(0.5)
        assert not stuck.done()

        refused_message = echo_message("second")
        send = rpc_body("message/send", {"message": refused_message}, 2)
        started = asyncio.get_running_loop().time()
        response = await post(http, send)
        waited = asyncio.get_running_loop().time() - started
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        body = response.json()
        assert body == {"jsonrpc": "2.0", "id": 2, "error": {"code": -32000, "message": BUSY}}
        assert_valid_response(body, "message/send")
        assert waited >= 0.3  # the configured wait, then the answer

        stream = rpc_body("message/stream", {"message": echo_message("third")}, 3)
        response = await http.post("/", json=stream, headers={"accept": "text/event-stream"})
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.json() == {
            "jsonrpc": "2.0",
            "id": 3,
            "error": {"code": -32000, "message": BUSY},
        }

        # Temporal keeps up again (a worker polls the queue): the stuck send completes, and the
        # refused message, sent again with its own id, runs.
        worker = create_worker(
            temporal_client, redis, worker_settings.model_copy(update={"task_queue": queue})
        )
        async with worker:
            first = (await stuck).json()
            assert first["result"]["status"]["state"] == "completed"
            again = (await post(http, send)).json()
            assert again["result"]["status"]["state"] == "completed"
            assert again["result"]["history"][0]["messageId"] == refused_message["messageId"]
            assert again["result"]["artifacts"][0]["parts"] == [{"kind": "text", "text": "second"}]
        with contextlib.suppress(asyncio.CancelledError):
            stuck.cancel()


async def test_a_repeat_turned_away_keeps_its_first_sends_claim(
    gateway_settings: GatewaySettings,
    worker_settings: WorkerSettings,
    temporal_client: Client,
    redis: Redis,
) -> None:
    """A message whose first send claimed a task and had not started it (it died, or is still
    starting it) is started by its repeat; turned away, the repeat leaves the claim to the first
    send, and a later retry still goes to that one task."""
    queue = f"test-admission-{uuid.uuid4().hex[:8]}"
    settings = gateway_settings.model_copy(
        update={"task_queue": queue, "max_pending_starts": 1, "admission_wait_seconds": 0.3}
    )
    store = TaskStore(redis, reader=None, ttl_seconds=600, timeout=5.0)
    message, streamed = echo_message("claimed before"), echo_message("claimed for a stream")
    claimed_task = str(uuid.uuid4())
    for claimed, task in ((message, claimed_task), (streamed, str(uuid.uuid4()))):
        assert await store.claim_message(Message.model_validate(claimed), task) is None
    claim, stream_claim = (message_task_key(m["messageId"]) for m in (message, streamed))
    value, stream_value = await redis.get(claim), await redis.get(stream_claim)
    async with app_client(settings) as http:
        stuck = asyncio.create_task(
            post(http, rpc_body("message/send", {"message": echo_message("first")}))
        )
        await asyncio.sleep(0.5)
        assert not stuck.done()
        send = rpc_body("message/send", {"message": message}, 2)
        response = await post(http, send)
        assert response.status_code == 503
        assert response.json() == {
            "jsonrpc": "2.0",
            "id": 2,
            "error": {"code": -32000, "message": BUSY},
        }
        assert await redis.get(claim) == value
        stream = rpc_body("message/stream", {"message": streamed}, 3)
        response = await http.post("/", json=stream, headers={"accept": "text/event-stream"})
        assert response.status_code == 503
        assert await redis.get(stream_claim) == stream_value

        worker = create_worker(
            temporal_client, redis, worker_settings.model_copy(update={"task_queue": queue})
        )
        async with worker:
            await stuck
            again = (await post(http, send)).json()
            assert again["result"]["id"] == claimed_task
            assert again["result"]["status"]["state"] == "completed"
            assert [m["messageId"] for m in again["result"]["history"]] == [message["messageId"]]
            assert again["result"]["artifacts"][0]["parts"] == [
                {"kind": "text", "text": "claimed before"}
            ]
