"""The internal task-event format: what workers append to a task's Redis stream (ARCHITECTURE.md,
"Two views of one event log"). The gateway renders each event as A2A or browser SSE."""

from __future__ import annotations

from typing import Literal

from protocol.types import Artifact, Task, TaskStatus, Wire

EventType = Literal["task.created", "task.status", "task.progress", "task.completed", "task.error"]


class TaskEvent(Wire):
    type: EventType
    taskId: str
    contextId: str
    # task.created and task.completed carry the whole Task.
    task: Task | None = None
    # task.status
    status: TaskStatus | None = None
    # task.progress
    artifact: Artifact | None = None
    append: bool | None = None
    lastChunk: bool | None = None
    # task.error
    error: dict[str, object] | None = None

    @classmethod
    def created(cls, task: Task) -> TaskEvent:
        return cls(type="task.created", taskId=task.id, contextId=task.contextId, task=task)

    @classmethod
    def completed(cls, task: Task) -> TaskEvent:
        return cls(type="task.completed", taskId=task.id, contextId=task.contextId, task=task)

    @classmethod
    def status_changed(cls, task: Task, status: TaskStatus) -> TaskEvent:
        return cls(type="task.status", taskId=task.id, contextId=task.contextId, status=status)

    @classmethod
    def progress(
        cls, task: Task, artifact: Artifact, *, append: bool, last_chunk: bool
    ) -> TaskEvent:
        return cls(
            type="task.progress",
            taskId=task.id,
            contextId=task.contextId,
            artifact=artifact,
            append=append,
            lastChunk=last_chunk,
        )


def apply_event(task: Task, event: TaskEvent) -> Task:
    """The task after `event`: the one rule both the workflow and the Redis snapshot follow."""
    if event.task is not None:
        return event.task
    if event.status is not None:
        history = list(task.history or [])
        if event.status.message is not None:
            history.append(event.status.message)
        return task.model_copy(update={"status": event.status, "history": history})
    if event.artifact is not None:
        return task.model_copy(
            update={"artifacts": merge_artifact(task.artifacts or [], event.artifact, event.append)}
        )
    return task


def merge_artifact(
    artifacts: list[Artifact], chunk: Artifact, append: bool | None
) -> list[Artifact]:
    """A2A §7.2: `append` adds the chunk's parts to the artifact with the same id; otherwise it replaces."""
    merged = list(artifacts)
    for index, existing in enumerate(merged):
        if existing.artifactId == chunk.artifactId:
            if append:
                chunk = existing.model_copy(update={"parts": [*existing.parts, *chunk.parts]})
            merged[index] = chunk
            return merged
    merged.append(chunk)
    return merged
