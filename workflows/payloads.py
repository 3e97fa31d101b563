"""What the task workflow, its updates and its activities take and return (Temporal payloads).

None carries content: messages, artifacts and metadata travel as references to the content store
(`protocol.records`), so every payload stays small whatever the task holds."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from protocol import TaskStatus
from protocol.records import ArtifactRef, ContentRef, StatusRecord, TaskRecord


class PushPolicy(BaseModel):
    """When the task workflow notifies webhooks, and how a delivery is retried (a Temporal retry policy)."""

    # False: on input-required, auth-required and terminal states only; True: on every state change.
    every_status: bool = False
    attempt_timeout_seconds: float = 10.0
    initial_interval_seconds: float = 1.0
    maximum_interval_seconds: float = 60.0
    maximum_attempts: int = 10


class TaskWorkflowInput(BaseModel):
    task_id: str
    context_id: str
    agent: str
    # The principal that created the task (None when the gateway authenticates nobody).
    owner: str | None = None
    push: PushPolicy = PushPolicy()
    # Push notification configs (ids; the configs live in Redis) registered with the first message.
    push_configs: list[str] = []
    # A worker that dies mid-turn is noticed after this long and the turn is retried on another worker.
    heartbeat_timeout_seconds: float = 90.0
    turn_timeout_seconds: float = 3600.0
    max_agent_attempts: int = 5
    search_attributes: bool = True
    # A run whose history grows past this continues as new (same task, same workflow id).
    continue_as_new_after_bytes: int = 2 * 1024 * 1024
    # A task whose first message has not arrived this long after its start ends failed.
    first_message_timeout_seconds: float = 60.0
    # Set when a run continues as new: the task as the previous run left it.
    record: TaskRecord | None = None
    turns_ended: int = 0


class SendMessageInput(BaseModel):
    message_id: str
    # The contextId the message names, if any (it must be the task's).
    context_id: str | None = None
    # The message itself, in the content store.
    content: ContentRef
    # False: the update returns as soon as the message is accepted, before the turn runs.
    blocking: bool = True


class CancelTaskInput(BaseModel):
    # Left unset by the gateway (a cancel's metadata stays out of Temporal); read in histories that
    # carry it.
    metadata: dict[str, Any] | None = None


class RunAgentInput(BaseModel):
    agent: str
    # The task's owner (with gateway auth): its context is the owner's alone.
    owner: str | None = None
    # The task as it was before this turn; the turn's user message is the last of its history.
    task: TaskRecord
    # The `working` status the workflow recorded for this turn; the activity publishes it as is.
    working: TaskStatus
    artifact_id: str
    first_turn: bool


class TurnOutcome(BaseModel):
    status: StatusRecord
    artifacts: list[ArtifactRef] = []
    # The Task's metadata after the turn, when the agent added to it.
    metadata: ContentRef | None = None
    # The messages of the turn's progress updates (tool calls...), in order: the history keeps them.
    steps: list[ContentRef] = []


class PublishEventInput(BaseModel):
    """End the task in `status` (a failure or cancel the workflow decided): the activity publishes
    the task's final event and stores the status message; it returns the status's record."""

    task: TaskRecord
    status: TaskStatus
    # The task's owner, whose task index the event updates (None: the shared index; also what runs
    # recorded before this field existed replay with).
    owner: str | None = None


class PushDeliveryInput(BaseModel):
    """One notification to one config: the task and the status it is about. The worker sends the
    task's snapshot with that status: the Task itself can outgrow a Temporal payload, and the config
    (with its credentials) stays in Redis, out of the workflow history."""

    task_id: str
    context_id: str
    status: StatusRecord
    config_id: str


class PushWorkflowInput(BaseModel):
    """A notification for a config set after the task's workflow had closed."""

    delivery: PushDeliveryInput
    policy: PushPolicy = PushPolicy()
