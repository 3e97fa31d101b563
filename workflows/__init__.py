"""Deterministic Temporal code: the task workflow, its inputs, update names and task-queue naming."""

from workflows.payloads import (
    CancelTaskInput,
    PublishEventInput,
    RunAgentInput,
    SendMessageInput,
    TaskWorkflowInput,
    TurnOutcome,
)
from workflows.task import (
    AGENT_ATTRIBUTE,
    CONTEXT_ID_ATTRIBUTE,
    CONTEXT_MISMATCH,
    NOT_ACCEPTING_MESSAGES,
    NOT_CANCELABLE,
    PUBLISH_EVENT,
    RUN_AGENT,
    SEARCH_ATTRIBUTES,
    STATE_ATTRIBUTE,
    TASK_BUSY,
    TaskWorkflow,
    task_queue_for,
    workflow_id_for,
)

__all__ = [
    "AGENT_ATTRIBUTE",
    "CONTEXT_ID_ATTRIBUTE",
    "CONTEXT_MISMATCH",
    "NOT_ACCEPTING_MESSAGES",
    "NOT_CANCELABLE",
    "PUBLISH_EVENT",
    "RUN_AGENT",
    "SEARCH_ATTRIBUTES",
    "STATE_ATTRIBUTE",
    "TASK_BUSY",
    "CancelTaskInput",
    "PublishEventInput",
    "RunAgentInput",
    "SendMessageInput",
    "TaskWorkflow",
    "TaskWorkflowInput",
    "TurnOutcome",
    "task_queue_for",
    "workflow_id_for",
]
