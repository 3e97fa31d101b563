"""No task is stranded: a workflow whose first message never arrives ends failed, and content that can no
longer be read fails the turn at once (one attempt) with a reason the client and Temporal both show."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis
from temporalio.client import Client, WorkflowExecutionStatus

from protocol import TaskState, task_snapshot_key
from protocol.records import ContentRef, StatusRecord, TaskRecord
from tests.integration.agent_calls import task_calls
from tests.integration.ended import final_status
from tests.integration.eventlog import count, read_until
from tests.integration.sse import GatewayProcess, echo_message, rpc_body
from workflows.names import PUBLISH_EVENT, RUN_QUICK_TURN
from workflows.payloads import TaskWorkflowInput
from workflows.task import TaskWorkflow


async def send(client: httpx.AsyncClient, url: str, message: dict[str, Any]) -> dict[str, Any]:
    body = (await client.post(url, json=rpc_body("message/send", {"message": message}))).json()
    assert "result" in body, body
    result: dict[str, Any] = body["result"]
    return result


async def test_a_task_whose_first_message_never_arrives_ends_failed(
    temporal_client: Client, redis: Redis, task_queue: str, echo_worker: None
) -> None:
    task_id = str(uuid.uuid4())
    handle = await temporal_client.start_workflow(
        TaskWorkflow.run,
        TaskWorkflowInput(
            task_id=task_id, context_id="c", agent="echo", first_message_timeout_seconds=1
        ),
        id=task_id,
        task_queue=task_queue,
    )
    status = await final_status(temporal_client, task_id)
    reason = "no message arrived within 1 s of the task's start"
    assert (status["state"], status["details"]) == ("failed", f"failed: {reason}")
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
    snapshot = orjson.loads(await redis.get(task_snapshot_key(task_id)) or b"null")
    assert snapshot["status"]["state"] == "failed"
    assert snapshot["status"]["message"]["parts"] == [{"kind": "text", "text": reason}]
    assert snapshot["history"] == [snapshot["status"]["message"]]


async def test_content_that_no_longer_parses_fails_the_turn_at_once(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis, temporal_client: Client
) -> None:
    asked = await send(sse_client, gateway_a.url, echo_message("one", finalState="input-required"))
    task_id = asked["id"]
    pieces = [key async for key in redis.scan_iter(match=f"a2a:task:{{{task_id}}}:content:*")]
    assert len(pieces) == 3  # the user's message, the artifact, the question
    for key in pieces:
        await redis.set(key, b"{not json")
    done = await send(sse_client, gateway_a.url, {**echo_message("two"), "taskId": task_id})
    assert done["status"]["state"] == "failed"
    text = done["status"]["message"]["parts"][0]["text"]
    assert text.startswith(f"Agent 'echo' failed: Task '{task_id}' cannot be read: Content ")
    assert "does not parse" in text
    # The answer came from the log: the workflow records the end a moment later.
    ended = await final_status(temporal_client, task_id)
    assert StatusRecord.model_validate(ended).state == "failed"
    # Two quick turns (local activities: both blocking sends of the instant echo) and the failure's
    # publication, each run once; the second turn failed for good.
    calls = await task_calls(temporal_client, task_id)
    assert [(c.type, c.attempt) for c in calls] == [
        (RUN_QUICK_TURN, 1),
        (RUN_QUICK_TURN, 1),
        (PUBLISH_EVENT, 1),
    ]
    failure = calls[1].failure
    assert failure is not None
    assert failure.application_failure_info.non_retryable


async def test_an_empty_context_id_names_no_context(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    task = await send(sse_client, gateway_a.url, {**echo_message("x"), "contextId": ""})
    assert task["status"]["state"] == "completed"
    assert str(uuid.UUID(task["contextId"])) == task["contextId"]


async def test_an_id_no_workflow_can_have_is_not_found_at_once(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    task_id = "😀" * 1000  # within 1,024 characters, 4,000 bytes: past Temporal's id limit
    body = (
        await sse_client.post(gateway_a.url, json=rpc_body("tasks/get", {"id": task_id}))
    ).json()
    assert body == {
        "jsonrpc": "2.0",
        "id": 1,
        "error": {"code": -32001, "message": f"Task not found: '{task_id}'"},
    }


async def test_a_message_of_empty_text_is_echoed_empty(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    message = {**echo_message(""), "parts": [{"kind": "text", "text": ""}]}
    task = await send(sse_client, gateway_a.url, message)
    assert task["status"]["state"] == "completed"
    assert [a["parts"] for a in task["artifacts"]] == [[{"kind": "text", "text": ""}]]


async def test_cancel_metadata_stays_out_of_temporal(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> None:
    params = {
        "message": echo_message("x" * 20, chunks=20, delay=0.2),
        "configuration": {"blocking": False},
    }
    started = (await sse_client.post(gateway_a.url, json=rpc_body("message/send", params))).json()
    task_id = started["result"]["id"]
    await read_until(redis, task_id, count("task.progress"))
    big = {"note": "m" * (3 * 1024 * 1024)}
    body = (
        await sse_client.post(
            gateway_a.url, json=rpc_body("tasks/cancel", {"id": task_id, "metadata": big})
        )
    ).json()
    assert body["result"]["status"]["state"] == "canceled"


async def test_a_run_whose_record_alone_passes_the_bound_does_not_continue_again(
    temporal_client: Client, task_queue: str, echo_worker: None
) -> None:
    task_id = str(uuid.uuid4())
    refs = [ContentRef(digest=f"{n:064x}", size=1) for n in range(300)]
    record = TaskRecord(
        id=task_id,
        contextId="c",
        status=StatusRecord(state=TaskState.INPUT_REQUIRED),
        history=refs,
    )
    handle = await temporal_client.start_workflow(
        TaskWorkflow.run,
        TaskWorkflowInput(
            task_id=task_id,
            context_id="c",
            agent="echo",
            record=record,
            turns_ended=5,
            continue_as_new_after_bytes=16 * 1024,
        ),
        id=task_id,
        task_queue=task_queue,
    )
    try:
        await asyncio.sleep(2)
        description = await handle.describe()
        execution = description.raw_description.workflow_execution_info
        # Still the first run, waiting for input: no run after run.
        assert execution.execution.run_id == execution.first_run_id == handle.result_run_id
        assert description.status == WorkflowExecutionStatus.RUNNING
    finally:
        await handle.terminate()
