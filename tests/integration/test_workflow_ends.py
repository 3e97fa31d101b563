"""How a task's workflow ends, as an operator sees it in the Temporal UI's status filter: Completed
for a task that completed; Failed for one that failed or was canceled through A2A, with a
non-retryable failure whose type names the A2A state and whose details carry the status; Canceled
when an operator cancelled the workflow itself."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError

from tests.conftest import RpcClient
from tests.integration.test_tasks import send, user_message
from tests.waiting import eventually


async def closed(temporal: Client, task_id: str) -> WorkflowExecutionStatus:
    handle = temporal.get_workflow_handle(task_id)

    async def ended() -> WorkflowExecutionStatus | None:
        status = (await handle.describe()).status
        return None if status == WorkflowExecutionStatus.RUNNING else status

    status = await eventually(ended, 30, what=f"task {task_id}'s workflow to close")
    assert status is not None
    return status


async def failure(temporal: Client, task_id: str) -> BaseException | None:
    try:
        await temporal.get_workflow_handle(task_id).result()
    except WorkflowFailureError as err:
        return err.cause
    return None


async def test_a_completed_task_completes_its_workflow(
    rpc: RpcClient, temporal_client: Client
) -> None:
    task = await send(rpc, user_message("fine"))
    assert await closed(temporal_client, task["id"]) == WorkflowExecutionStatus.COMPLETED


async def test_a_failed_task_fails_its_workflow_naming_the_a2a_state(
    rpc: RpcClient, temporal_client: Client
) -> None:
    task = await send(rpc, user_message("boom", metadata={"echo": {"failOnTurn": 1}}))
    assert task["status"]["state"] == "failed"
    assert await closed(temporal_client, task["id"]) == WorkflowExecutionStatus.FAILED
    cause = await failure(temporal_client, task["id"])
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.non_retryable, cause.message) == (
        "A2ATaskFailed",
        True,
        "A2A task failed: Agent 'echo' failed: scripted failure on turn 1",
    )
    [status] = cause.details
    assert isinstance(status, dict)
    assert (status["state"], status["timestamp"]) == ("failed", task["status"]["timestamp"])


async def test_a_task_canceled_through_a2a_fails_its_workflow_as_canceled(
    rpc: RpcClient, temporal_client: Client
) -> None:
    slow: dict[str, Any] = {"echo": {"chunks": 2, "delay": 60}}
    task = await send(rpc, user_message("slow", metadata=slow), blocking=False)
    canceled = await rpc.call("tasks/cancel", {"id": task["id"]})
    assert canceled["result"]["status"]["state"] == "canceled"
    assert await closed(temporal_client, task["id"]) == WorkflowExecutionStatus.FAILED
    cause = await failure(temporal_client, task["id"])
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.message) == ("A2ATaskCanceled", "A2A task canceled")


async def test_an_operator_cancel_ends_the_workflow_canceled(
    rpc: RpcClient, temporal_client: Client
) -> None:
    slow: dict[str, Any] = {"echo": {"chunks": 2, "delay": 60}}
    task = await send(rpc, user_message("slow", metadata=slow), blocking=False)
    await temporal_client.get_workflow_handle(task["id"]).cancel()
    assert await closed(temporal_client, task["id"]) == WorkflowExecutionStatus.CANCELED
    assert isinstance(await failure(temporal_client, task["id"]), CancelledError)
    got = await rpc.call("tasks/get", {"id": task["id"]})
    assert got["result"]["status"]["state"] == "canceled"
