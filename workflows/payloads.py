"""What the task workflow, its updates and its activities take and return (Temporal payloads)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from protocol import Artifact, Message, Task, TaskEvent, TaskStatus


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
    heartbeat_timeout_seconds: float = 10.0
    turn_timeout_seconds: float = 3600.0
    max_agent_attempts: int = 5
    search_attributes: bool = True


class SendMessageInput(BaseModel):
    message: Message
    # False: the update returns as soon as the message is accepted, before the turn runs.
    blocking: bool = True


class CancelTaskInput(BaseModel):
    metadata: dict[str, Any] | None = None


class RunAgentInput(BaseModel):
    agent: str
    # The task's owner (with gateway auth): its context is the owner's alone.
    owner: str | None = None
    # The task as it was before this turn; the turn's user message is the last of its history.
    task: Task
    # The `working` status the workflow recorded for this turn; the activity publishes it as is.
    working: TaskStatus
    artifact_id: str
    first_turn: bool


class TurnOutcome(BaseModel):
    status: TaskStatus
    artifacts: list[Artifact] = []
    # What the agent adds to the Task's metadata.
    metadata: dict[str, Any] | None = None
    # The messages of the turn's progress updates (tool calls...), in order: the history keeps them.
    steps: list[Message] = []


class PublishEventInput(BaseModel):
    event: TaskEvent
    # The task's owner, whose task index the event updates (None: the shared index; also what runs
    # recorded before this field existed replay with).
    owner: str | None = None


class PushDeliveryInput(BaseModel):
    """One notification to one config: the task and the status it is about. The worker sends the
    task's snapshot with that status: the Task itself can outgrow a Temporal payload, and the config
    (with its credentials) stays in Redis, out of the workflow history."""

    task_id: str
    context_id: str
    status: TaskStatus
    config_id: str


class PushWorkflowInput(BaseModel):
    """A notification for a config set after the task's workflow had closed."""

    delivery: PushDeliveryInput
    policy: PushPolicy = PushPolicy()
