"""The task as Temporal carries it: references to content, never the content.

Message parts and artifacts live in the content store (`content/`), keyed by task and by the SHA-256 of
their JSON. A `TaskRecord` is the task's skeleton (ids, states, the order of its messages and artifacts),
small whatever the task holds, so workflow state, update arguments and activity inputs stay far below
Temporal's 2 MiB payload limit and a long conversation's history grows by references only.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel

from protocol.types import TaskState, TaskStatus, TextPart

# Temporal's UI shows a workflow's current details; the start of a status message is enough there.
DETAILS_MAX_CHARS = 200


class ContentRef(BaseModel):
    """One piece of content (a message, an artifact, a task's metadata) in the content store."""

    digest: str
    size: int

    @classmethod
    def of(cls, raw: bytes) -> ContentRef:
        return cls(digest=hashlib.sha256(raw).hexdigest(), size=len(raw))


class ArtifactRef(BaseModel):
    artifactId: str
    content: ContentRef


class StatusRecord(BaseModel):
    state: TaskState
    timestamp: str | None = None
    # The status message, also the last of the history when set.
    message: ContentRef | None = None
    # The state, then the start of the status message: what the Temporal UI shows.
    details: str = ""

    @classmethod
    def of(cls, status: TaskStatus, message: ContentRef | None = None) -> StatusRecord:
        """The record of `status`, whose message (if any) is stored as `message`."""
        return cls(
            state=status.state,
            timestamp=status.timestamp,
            message=message,
            details=current_details(status),
        )


class TaskRecord(BaseModel):
    id: str
    contextId: str
    status: StatusRecord
    # The messages in order: the user's, the agent's progress steps, and each status message.
    history: list[ContentRef] = []
    artifacts: list[ArtifactRef] = []
    metadata: ContentRef | None = None

    def with_message(self, message: ContentRef) -> TaskRecord:
        return self.model_copy(update={"history": [*self.history, message]})

    def with_status(self, status: StatusRecord) -> TaskRecord:
        """`status` as the current one; its message joins the history (as `apply_event` does)."""
        history = self.history if status.message is None else [*self.history, status.message]
        return self.model_copy(update={"status": status, "history": history})

    def with_artifact(self, artifact: ArtifactRef) -> TaskRecord:
        """`artifact` in place of the one with its id, else after the others."""
        artifacts = list(self.artifacts)
        for index, existing in enumerate(artifacts):
            if existing.artifactId == artifact.artifactId:
                artifacts[index] = artifact
                break
        else:
            artifacts.append(artifact)
        return self.model_copy(update={"artifacts": artifacts})

    def refs(self) -> list[ContentRef]:
        """Every piece of content the task refers to, each once."""
        refs = [*self.history, *(a.content for a in self.artifacts)]
        if self.metadata is not None:
            refs.append(self.metadata)
        if self.status.message is not None:
            refs.append(self.status.message)
        return list({ref.digest: ref for ref in refs}.values())


def current_details(status: TaskStatus) -> str:
    """The workflow's current details in the Temporal UI: the A2A state, then the start of the status
    message (what an input-required task asks, why a task failed)."""
    parts = status.message.parts if status.message is not None else []
    text = " ".join(" ".join(p.text for p in parts if isinstance(p, TextPart)).split())
    if len(text) > DETAILS_MAX_CHARS:
        text = text[: DETAILS_MAX_CHARS - 1].rstrip() + "…"
    return f"{status.state.value}: {text}" if text else status.state.value
