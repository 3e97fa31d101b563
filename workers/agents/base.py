"""What an agent sees of a turn, and what it gives back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from protocol import Message, Part, Task, TaskState


@dataclass(frozen=True)
class AgentReply:
    """How the turn ends: `completed`, `input-required`, `failed`... and an optional agent message."""

    state: TaskState
    message: list[Part] | None = None
    # Merged into the Task's `metadata` (token usage, for instance).
    metadata: dict[str, Any] | None = None


class Turn(Protocol):
    """One turn of a task, as the agent activity hands it to an agent."""

    @property
    def task(self) -> Task: ...

    @property
    def message(self) -> Message: ...

    async def context(self) -> list[Message]:
        """Earlier turns of the task's context (the tasks before this one), oldest first, bounded."""
        ...

    async def artifact_chunk(
        self, parts: list[Part], *, last: bool, name: str | None = None
    ) -> None:
        """Stream a piece of this turn's artifact (the first chunk replaces, later ones append)."""

    async def progress(self, parts: list[Part]) -> None:
        """Show a step of the turn (a tool call, say) as a `working` status update with these parts."""


class Agent(Protocol):
    async def run(self, turn: Turn) -> AgentReply: ...

    def quick(self, message: Message) -> bool:
        """Whether the turn `message` starts ends within about a second: the workflow then runs it
        inside its workflow task (a local activity, no heartbeats, nothing for Temporal to dispatch).
        Only for turns that cannot block on anything slow."""
        ...
