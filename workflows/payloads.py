"""What the task workflow, its updates and its activities take and return (Temporal payloads)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from protocol import Artifact, Message, Task, TaskEvent, TaskStatus


class TaskWorkflowInput(BaseModel):
    task_id: str
    context_id: str
    agent: str
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
