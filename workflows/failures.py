"""The status a task ends in when its turn fails, or its first message never comes; and how its
workflow ends, so that operators see a task that did not succeed in the Temporal UI's status filter."""

from __future__ import annotations

import asyncio

from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from protocol import Message, TaskState, TaskStatus, TextPart
from protocol.records import StatusRecord

# How long a failure's reason may be in the task's status message.
REASON_MAX_CHARS = 2000


def failure_reason(err: FailureError) -> str:
    """What went wrong: an activity's failure is an ActivityError, a local activity's the failure
    itself; an agent's ApplicationError says it in its message."""
    cause = err.cause if isinstance(err, ActivityError) else err
    return cause.message if isinstance(cause, ApplicationError) else str(cause or err)


def failed_status(
    text: str, *, timestamp: str, message_id: str, task_id: str, context_id: str
) -> TaskStatus:
    """`failed`, with `text` (cut to REASON_MAX_CHARS) as the agent's status message."""
    if len(text) > REASON_MAX_CHARS:
        text = text[: REASON_MAX_CHARS - 1] + "…"
    return TaskStatus(
        state=TaskState.FAILED,
        timestamp=timestamp,
        message=Message(
            role="agent",
            parts=[TextPart(text=text)],
            messageId=message_id,
            taskId=task_id,
            contextId=context_id,
        ),
    )


# The A2A states a workflow does not end Completed in, and the failure type it ends Failed with.
UNSUCCESSFUL_ENDS = {
    TaskState.FAILED: "A2ATaskFailed",
    TaskState.CANCELED: "A2ATaskCanceled",
    TaskState.REJECTED: "A2ATaskRejected",
    TaskState.UNKNOWN: "A2ATaskUnknown",
}


def end_of_run(status: StatusRecord, *, cancel_requested_in_temporal: bool) -> BaseException | None:
    """What the workflow raises to end with `status` (None: it returns it, Completed). A task that
    did not succeed fails its workflow with a non-retryable ApplicationError whose type names the
    A2A state and whose details carry the status record; a cancel an operator asked of Temporal (UI,
    CLI) ends it Canceled."""
    kind = UNSUCCESSFUL_ENDS.get(status.state)
    if kind is None:
        return None
    if status.state == TaskState.CANCELED and cancel_requested_in_temporal:
        return asyncio.CancelledError()
    # The details start with the state ("failed: Agent 'echo' failed: ...").
    message = f"A2A task {status.details or status.state.value}"
    return ApplicationError(message, status, type=kind, non_retryable=True)
