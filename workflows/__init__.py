"""Deterministic Temporal code: the task workflow, its inputs, update names and task-queue naming.

Each name loads its module on first use: the workflow sandbox imports this package again for every
workflow it runs, and a TaskWorkflow need not define PushWorkflow each time (nor the reverse).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workflows.payloads import (
        CancelTaskInput,
        PublishEventInput,
        PushDeliveryInput,
        PushPolicy,
        PushWorkflowInput,
        RunAgentInput,
        SendMessageInput,
        TaskWorkflowInput,
        TurnOutcome,
    )
    from workflows.push import (
        DELIVER_PUSH,
        PUSH_REFUSED,
        PUSH_REJECTED,
        PushWorkflow,
        push_workflow_id,
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
    "DELIVER_PUSH",
    "NOT_ACCEPTING_MESSAGES",
    "NOT_CANCELABLE",
    "PUBLISH_EVENT",
    "PUSH_REFUSED",
    "PUSH_REJECTED",
    "RUN_AGENT",
    "SEARCH_ATTRIBUTES",
    "STATE_ATTRIBUTE",
    "TASK_BUSY",
    "CancelTaskInput",
    "PublishEventInput",
    "PushDeliveryInput",
    "PushPolicy",
    "PushWorkflow",
    "PushWorkflowInput",
    "RunAgentInput",
    "SendMessageInput",
    "TaskWorkflow",
    "TaskWorkflowInput",
    "TurnOutcome",
    "push_workflow_id",
    "task_queue_for",
    "workflow_id_for",
]

_HOME = {
    "CancelTaskInput": "workflows.payloads",
    "PublishEventInput": "workflows.payloads",
    "PushDeliveryInput": "workflows.payloads",
    "PushPolicy": "workflows.payloads",
    "PushWorkflowInput": "workflows.payloads",
    "RunAgentInput": "workflows.payloads",
    "SendMessageInput": "workflows.payloads",
    "TaskWorkflowInput": "workflows.payloads",
    "TurnOutcome": "workflows.payloads",
    "DELIVER_PUSH": "workflows.push",
    "PUSH_REFUSED": "workflows.push",
    "PUSH_REJECTED": "workflows.push",
    "PushWorkflow": "workflows.push",
    "push_workflow_id": "workflows.push",
    "AGENT_ATTRIBUTE": "workflows.task",
    "CONTEXT_ID_ATTRIBUTE": "workflows.task",
    "CONTEXT_MISMATCH": "workflows.task",
    "NOT_ACCEPTING_MESSAGES": "workflows.task",
    "NOT_CANCELABLE": "workflows.task",
    "PUBLISH_EVENT": "workflows.task",
    "RUN_AGENT": "workflows.task",
    "SEARCH_ATTRIBUTES": "workflows.task",
    "STATE_ATTRIBUTE": "workflows.task",
    "TASK_BUSY": "workflows.task",
    "TaskWorkflow": "workflows.task",
    "task_queue_for": "workflows.task",
    "workflow_id_for": "workflows.task",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'workflows' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
