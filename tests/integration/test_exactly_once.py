"""Exactly-once sends: a message id the caller already sent gets the task that message went to, and the
message is delivered (and answered by the agent) once, whether the repeat races the first or comes
after it ended. Real gateway, Temporal and Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from redis.asyncio import Redis
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from protocol.keys import message_task_key
from tests.integration.agent_calls import task_calls
from tests.integration.eventlog import count, read_until
from tests.integration.sse import GatewayProcess, echo_message, read_stream, rpc_body
from tests.waiting import eventually
from workflows.names import RUN_AGENT, RUN_QUICK_TURN


async def call(client: httpx.AsyncClient, url: str, method: str, params: Any) -> dict[str, Any]:
    response = await client.post(url, json=rpc_body(method, params))
    body: dict[str, Any] = response.json()
    return body


async def send(client: httpx.AsyncClient, url: str, message: dict[str, Any]) -> dict[str, Any]:
    body = await call(client, url, "message/send", {"message": message})
    assert "result" in body, body
    result: dict[str, Any] = body["result"]
    return result


async def turns_run(temporal: Client, task_id: str, expected: int) -> int:
    """How many agent turns the task's workflow ran (an activity, or a quick local one), once it
    has recorded `expected` and a moment more has passed: a blocking send may be answered from the
    log before Temporal records the turn."""

    async def count() -> int:
        calls = await task_calls(temporal, task_id)
        return sum(1 for call in calls if call.type in (RUN_AGENT, RUN_QUICK_TURN))

    await eventually(count, 10, what=f"{expected} turns", until=lambda n: n >= expected)
    await asyncio.sleep(0.5)
    return await count()


def message_ids(task: dict[str, Any]) -> list[str]:
    return [m["messageId"] for m in task["history"] if m["role"] == "user"]


async def test_two_concurrent_identical_sends_make_one_task_and_one_turn(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, temporal_client: Client
) -> None:
    message = echo_message("once", chunks=2, delay=0.2)
    first, second = await asyncio.gather(
        send(sse_client, gateway_a.url, message), send(sse_client, gateway_a.url, message)
    )
    assert first["id"] == second["id"]
    assert first["status"]["state"] == second["status"]["state"] == "completed"
    got = await send_get(sse_client, gateway_a.url, first["id"])
    assert message_ids(got) == [message["messageId"]]
    assert len(got["artifacts"]) == 1
    assert await turns_run(temporal_client, first["id"], 1) == 1


async def send_get(client: httpx.AsyncClient, url: str, task_id: str) -> dict[str, Any]:
    body = await call(client, url, "tasks/get", {"id": task_id})
    result: dict[str, Any] = body["result"]
    return result


async def test_a_send_repeated_after_the_task_ended_returns_that_task(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, temporal_client: Client
) -> None:
    message = echo_message("again")
    first = await send(sse_client, gateway_a.url, message)
    again = await send(sse_client, gateway_a.url, message)
    assert again == first == await send_get(sse_client, gateway_a.url, first["id"])
    assert await turns_run(temporal_client, first["id"], 1) == 1


async def test_a_repeated_follow_up_is_delivered_once(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, temporal_client: Client
) -> None:
    asked = await send(sse_client, gateway_a.url, echo_message("one", finalState="input-required"))
    reply = {**echo_message("two", chunks=2, delay=0.2), "taskId": asked["id"]}
    first, second = await asyncio.gather(
        send(sse_client, gateway_a.url, reply), send(sse_client, gateway_a.url, reply)
    )
    assert first["status"]["state"] == second["status"]["state"] == "completed"
    got = await send_get(sse_client, gateway_a.url, asked["id"])
    assert message_ids(got) == [asked["history"][0]["messageId"], reply["messageId"]]
    assert await turns_run(temporal_client, asked["id"], 2) == 2
    # After the task ended, the same follow-up still answers with the task, not an error.
    assert await send(sse_client, gateway_a.url, reply) == got


async def test_a_follow_up_whose_claim_redis_forgot_answers_with_its_task(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> None:
    """A send that finds its own message in the ended task (a repeat of it reached the workflow
    first, or Redis lost its claim) answers with that task, blocking or streamed."""
    asked = await send(sse_client, gateway_a.url, echo_message("one", finalState="input-required"))
    reply = {**echo_message("two"), "taskId": asked["id"]}
    await send(sse_client, gateway_a.url, reply)
    got = await send_get(sse_client, gateway_a.url, asked["id"])
    assert got["status"]["state"] == "completed"
    claim = message_task_key(reply["messageId"])

    assert await redis.delete(claim) == 1
    assert await send(sse_client, gateway_a.url, reply) == got

    assert await redis.delete(claim) == 1
    body = rpc_body("message/stream", {"message": reply})
    streamed = await read_stream(sse_client, "POST", gateway_a.url, json=body, deadline=30)
    assert [frame.data for frame in streamed.frames if frame.data is not None] == [
        {"jsonrpc": "2.0", "id": 1, "result": got}
    ]


async def test_a_repeated_stream_streams_the_same_task(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, temporal_client: Client
) -> None:
    message = echo_message("streamed", chunks=2)
    body = rpc_body("message/stream", {"message": message})
    first = await read_stream(sse_client, "POST", gateway_a.url, json=body, deadline=30)
    second = await read_stream(sse_client, "POST", gateway_a.url, json=body, deadline=30)
    first_frames = [frame.data for frame in first.frames if frame.data is not None]
    second_frames = [frame.data for frame in second.frames if frame.data is not None]
    # Both from the start of the same task's log: the same events.
    assert second_frames == first_frames
    task_id = first_frames[0]["result"]["id"]
    assert await turns_run(temporal_client, task_id, 1) == 1


async def test_a_message_id_sent_to_one_task_is_refused_for_another(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    asked = await send(sse_client, gateway_a.url, echo_message("one", finalState="input-required"))
    other = await send(sse_client, gateway_a.url, echo_message("two", finalState="input-required"))
    reused = {**echo_message("three"), "messageId": other["history"][0]["messageId"]}
    body = await call(
        sse_client, gateway_a.url, "message/send", {"message": {**reused, "taskId": asked["id"]}}
    )
    assert body == {
        "jsonrpc": "2.0",
        "id": 1,
        "error": {
            "code": -32602,
            "message": f"messageId '{reused['messageId']}' was already sent to another task; "
            "every message needs an id of its own",
        },
    }


async def test_a_refused_message_leaves_its_id_free(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    message = echo_message("lost")
    refused = await call(
        sse_client, gateway_a.url, "message/send", {"message": {**message, "taskId": "no-such"}}
    )
    assert refused == {
        "jsonrpc": "2.0",
        "id": 1,
        "error": {"code": -32001, "message": "Task not found: 'no-such'"},
    }
    task = await send(sse_client, gateway_a.url, message)
    assert task["id"] != "no-such"
    assert task["status"]["state"] == "completed"


async def test_repeats_of_a_delivered_message_park_no_update_in_the_workflow(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis, temporal_client: Client
) -> None:
    message = echo_message("slowly", chunks=6, delay=0.3)
    first = await call(
        sse_client,
        gateway_a.url,
        "message/send",
        {"message": message, "configuration": {"blocking": False}},
    )
    task_id = first["result"]["id"]
    await read_until(redis, task_id, count("task.created"))
    repeats = await asyncio.gather(*(send(sse_client, gateway_a.url, message) for _ in range(12)))
    # Temporal takes at most 10 updates in flight per workflow; every repeat waited on the log.
    assert {(task["id"], task["status"]["state"]) for task in repeats} == {(task_id, "completed")}
    history = await temporal_client.get_workflow_handle(task_id).fetch_history()
    accepted = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    assert len(accepted) == 1


async def test_a_message_id_sent_again_with_other_content_is_refused(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, temporal_client: Client
) -> None:
    first = echo_message("one")
    task = await send(sse_client, gateway_a.url, first)
    other = {**echo_message("two"), "messageId": first["messageId"]}
    body = await call(sse_client, gateway_a.url, "message/send", {"message": other})
    assert body == {
        "jsonrpc": "2.0",
        "id": 1,
        "error": {
            "code": -32602,
            "message": f"messageId '{first['messageId']}' was already sent with other content; "
            "every message needs an id of its own",
        },
    }
    assert await turns_run(temporal_client, task["id"], 1) == 1
