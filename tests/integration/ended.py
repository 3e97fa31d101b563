"""The end of a task's workflow, however it ended: Completed (the task completed), Failed with the
task's status in its failure's details (failed, canceled, rejected through A2A), or Canceled (an
operator's cancel; the status then from the `get_task` query)."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError

from workflows.failures import UNSUCCESSFUL_ENDS


async def final_status(temporal: Client, workflow_id: str) -> dict[str, Any]:
    """The status record (as a dict) the workflow ended with, once it has closed; a workflow that
    failed for another reason than its task's end raises."""
    handle = temporal.get_workflow_handle(workflow_id)
    try:
        result: dict[str, Any] = await handle.result()
    except WorkflowFailureError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type in UNSUCCESSFUL_ENDS.values():
            details: dict[str, Any] = cause.details[0]
            return details
        if isinstance(cause, CancelledError):
            record: dict[str, Any] = await handle.query("get_task")
            status: dict[str, Any] = record["status"]
            return status
        raise
    return result
