"""The start of a task's workflow: where it goes, what it starts with, how a repeated start behaves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio.client import WithStartWorkflowOperation
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from gateway.settings import GatewaySettings
from gateway.tasks.summary import task_summary
from protocol import Message
from workflows.names import (
    AGENT_ATTRIBUTE,
    CONTEXT_ID_ATTRIBUTE,
    STATE_ATTRIBUTE,
    workflow_id_for,
)
from workflows.payloads import PushPolicy, TaskWorkflowInput
from workflows.task import TaskWorkflow


@dataclass(frozen=True, slots=True)
class Route:
    """Where an agent's new tasks go."""

    agent: str
    task_queue: str


def start_operation(
    settings: GatewaySettings,
    push: PushPolicy,
    route: Route,
    task_id: str,
    context_id: str,
    message: Message,
    owner: str | None,
    push_configs: list[str],
) -> WithStartWorkflowOperation[Any, Any]:
    """The start of `task_id`'s workflow with Update-with-Start: a start repeated while it runs uses
    the running workflow, and a closed one is never run again."""
    search_attributes = None
    if settings.search_attributes:
        search_attributes = TypedSearchAttributes(
            [
                SearchAttributePair(CONTEXT_ID_ATTRIBUTE, context_id),
                SearchAttributePair(AGENT_ATTRIBUTE, route.agent),
                SearchAttributePair(STATE_ATTRIBUTE, "submitted"),
            ]
        )
    return WithStartWorkflowOperation(
        TaskWorkflow.run,
        TaskWorkflowInput(
            task_id=task_id,
            context_id=context_id,
            agent=route.agent,
            heartbeat_timeout_seconds=settings.agent_heartbeat_timeout_seconds,
            max_agent_attempts=settings.max_agent_attempts,
            search_attributes=settings.search_attributes,
            continue_as_new_after_bytes=settings.workflow_history_max_bytes,
            first_message_timeout_seconds=settings.first_message_timeout_seconds,
            owner=owner,
            push=push,
            push_configs=push_configs,
        ),
        id=workflow_id_for(task_id),
        task_queue=route.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=search_attributes,
        static_summary=task_summary(message),
    )
