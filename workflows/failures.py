"""The status a task ends in when its turn fails, or its first message never comes."""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from protocol import Message, TaskState, TaskStatus, TextPart

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
