"""The A2A errors of Temporal's refusals: a workflow's rejected update, a task that is not there, one
that has ended."""

from __future__ import annotations

from typing import NoReturn

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from protocol import (
    InvalidParamsError,
    Task,
    TaskEndedError,
    TaskNotCancelableError,
    TaskNotFoundError,
)
from workflows.acceptance import CONTEXT_MISMATCH, NOT_ACCEPTING_MESSAGES, NOT_CANCELABLE, TASK_BUSY

# Temporal refuses workflow ids longer than this (its default `limit.maxIDLength`, in bytes), and
# resets the connection when asked about much longer ones: no task has such an id.
TEMPORAL_MAX_ID_BYTES = 1000


def possible_workflow_id(task_id: str) -> bool:
    return len(task_id.encode()) <= TEMPORAL_MAX_ID_BYTES


def task_not_found(task_id: str) -> TaskNotFoundError:
    return TaskNotFoundError(f"Task not found: '{task_id}'")


def no_more_messages(task_id: str, task: Task) -> TaskEndedError:
    return TaskEndedError(
        f"Task '{task_id}' is {task.status.state.value}; a terminal task accepts no messages."
    )


def not_cancelable(task_id: str, task: Task) -> TaskNotCancelableError:
    return TaskNotCancelableError(
        f"Task '{task_id}' is {task.status.state.value}; a terminal task cannot be canceled."
    )


def raise_update_rejection(err: WorkflowUpdateFailedError) -> NoReturn:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        if cause.type == NOT_CANCELABLE:
            raise TaskNotCancelableError(cause.message) from err
        if cause.type == NOT_ACCEPTING_MESSAGES:
            raise TaskEndedError(cause.message) from err
        if cause.type in (TASK_BUSY, CONTEXT_MISMATCH):
            raise InvalidParamsError(cause.message) from err
    raise err
