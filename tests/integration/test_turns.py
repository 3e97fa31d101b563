"""What an agent's turn carries besides its own task: the earlier turns of its context, and the partial
state its heartbeats hand to a retried attempt. Echo tasks through the gateway, real Temporal and Redis."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from content import ContentStore
from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from protocol import Message, Task, TaskState, TaskStatus, TextPart, context_tasks_key
from protocol.records import StatusRecord, TaskRecord
from tests.integration.eventlog import count, read_until
from tests.integration.sse import GatewayProcess, echo_message, rpc_body
from tests.waiting import eventually
from workers.activities import AgentTurn
from workers.publisher import EventPublisher
from workflows.payloads import RunAgentInput


def text_of(message: Message) -> str:
    return "".join(part.text for part in message.parts if isinstance(part, TextPart))


async def send(client: httpx.AsyncClient, url: str, message: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(url, json=rpc_body("message/send", {"message": message}))
    result: dict[str, Any] = response.json()["result"]
    return result


async def test_a_new_task_sees_the_last_messages_of_its_context(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> None:
    first = await send(sse_client, gateway_a.url, echo_message("one", finalState="input-required"))
    context_id = first["contextId"]
    second = await send(sse_client, gateway_a.url, {**echo_message("two"), "contextId": context_id})
    assert await redis.lrange(context_tasks_key(context_id), 0, -1) == [
        first["id"].encode(),
        second["id"].encode(),
    ]
    user = Message(role="user", parts=[TextPart(text="three")], messageId="m3")
    task = Task(
        id=str(uuid.uuid4()),
        contextId=context_id,
        status=TaskStatus(state=TaskState.SUBMITTED),
        history=[user],
    )
    contents = ContentStore(redis, ttl_seconds=60)
    record = TaskRecord(
        id=task.id,
        contextId=context_id,
        status=StatusRecord(state=TaskState.SUBMITTED),
        history=[await contents.put_message(task.id, user)],
    )
    turn = AgentTurn(
        EventPublisher(redis, stream_max_length=100, ttl_seconds=60),
        contents,
        RunAgentInput(
            agent="echo",
            task=record,
            working=TaskStatus(state=TaskState.WORKING),
            artifact_id="a",
            first_turn=True,
        ),
        await contents.task(record),
        context_messages=2,
    )
    await ActivityEnvironment().run(turn.start)
    context = await turn.context()
    # The first task's user message and its input-required prompt, then the second's user message; the
    # limit keeps the last two.
    assert [(m.role, text_of(m)) for m in context] == [
        ("agent", "Echoed 3 characters. Send another message to continue."),
        ("user", "two"),
    ]


async def test_heartbeats_carry_the_attempts_partial_state(
    gateway_a: GatewayProcess,
    sse_client: httpx.AsyncClient,
    redis: Redis,
    temporal_client: Client,
) -> None:
    params = {
        "message": echo_message("abcdefghij", chunks=10, delay=0.3),
        "configuration": {"blocking": False},
    }
    started = await sse_client.post(gateway_a.url, json=rpc_body("message/send", params))
    task_id = started.json()["result"]["id"]
    events = await read_until(redis, task_id, count("task.progress", 3))
    artifact_id = events[2]["artifact"]["artifactId"]
    handle = temporal_client.get_workflow_handle(task_id)

    async def heartbeat_details() -> list[Any]:
        """The details of the turn's last heartbeat (none before its first)."""
        pending = (await handle.describe()).raw_description.pending_activities
        if not pending or not pending[0].heartbeat_details.payloads:
            return []
        return await temporal_client.data_converter.decode(pending[0].heartbeat_details.payloads)

    details = await eventually(
        heartbeat_details,
        10,
        what="a heartbeat of the turn with at least 3 chunks sent",
        until=lambda details: bool(details) and details[0]["chunksSent"] >= 3,
    )
    sent = details[0].pop("chunksSent")
    assert 3 <= sent < 10
    assert details[0] == {"attempt": 1, "artifactId": artifact_id, "steps": 0}
    await sse_client.post(gateway_a.url, json=rpc_body("tasks/cancel", {"id": task_id}))
