"""Which messages a task's workflow accepts, and the errors (ApplicationError types the gateway maps
to JSON-RPC errors) that refuse the others."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from protocol import INTERRUPTED_STATES, TERMINAL_STATES
from protocol.records import TaskRecord

NOT_ACCEPTING_MESSAGES = "TaskNotAcceptingMessages"
TASK_BUSY = "TaskBusy"
NOT_CANCELABLE = "TaskNotCancelable"
CONTEXT_MISMATCH = "ContextMismatch"


def message_refusal(
    task: TaskRecord, context_id: str | None, *, pending: bool, ending: str | None
) -> ApplicationError | None:
    """Why `task` refuses a new message naming `context_id` (None: it takes it). `pending`: a message
    waits for its turn already; `ending`: why the task accepts no more (None: it does)."""
    state = task.status.state
    if context_id not in (None, task.contextId):
        return ApplicationError(
            f"Message contextId '{context_id}' does not match task '{task.id}' "
            f"(contextId '{task.contextId}').",
            type=CONTEXT_MISMATCH,
        )
    if state in TERMINAL_STATES:
        return ApplicationError(
            f"Task '{task.id}' is {state.value}; a terminal task accepts no messages.",
            type=NOT_ACCEPTING_MESSAGES,
        )
    if ending is not None:
        return ApplicationError(
            f"Task '{task.id}' is {ending}; it accepts no more messages.",
            type=NOT_ACCEPTING_MESSAGES,
        )
    first_message = not task.history
    if pending or not (first_message or state in INTERRUPTED_STATES):
        return ApplicationError(
            f"Task '{task.id}' is {state.value}; it accepts a message only when input-required.",
            type=TASK_BUSY,
        )
    return None
