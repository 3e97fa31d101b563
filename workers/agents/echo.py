"""The echo agent: offline and deterministic; the default agent and the workhorse of tests and benchmarks.

It replies with the user's text as an artifact, streamed in `chunks` pieces `delay` seconds apart, then ends
the turn in `final_state`. A message's `metadata.echo` object overrides the options for that turn
(`chunks`, `delay`, `finalState`, `failOnTurn`), which lets one worker serve every scripted scenario.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.exceptions import ApplicationError

from protocol import Message, Part, TaskState, TextPart
from workers.agents.base import AgentReply, Turn

# A turn that sleeps no longer than this in all is quick (`Agent.quick`).
QUICK_TURN_SECONDS = 1.0


class EchoOptions(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    chunks: int = Field(default=1, ge=1, le=10_000)
    delay: float = Field(default=0.0, ge=0.0, le=3600.0)
    final_state: Literal["completed", "input-required"] = Field(
        default="completed", alias="finalState"
    )
    # Fail the task on this turn (1-based), as an agent error would.
    fail_on_turn: int | None = Field(default=None, ge=1, alias="failOnTurn")


class EchoAgent:
    def __init__(self, options: EchoOptions) -> None:
        self._options = options

    def quick(self, message: Message) -> bool:
        options = self._options_for(message.metadata)
        return options.delay * (options.chunks - 1) <= QUICK_TURN_SECONDS

    async def run(self, turn: Turn) -> AgentReply:
        options = self._options_for(turn.message.metadata)
        number = sum(1 for message in turn.task.history or [] if message.role == "user")
        if options.fail_on_turn == number:
            raise ApplicationError(f"scripted failure on turn {number}", non_retryable=True)
        text = "".join(part.text for part in turn.message.parts if isinstance(part, TextPart))
        other: list[Part] = [part for part in turn.message.parts if not isinstance(part, TextPart)]
        pieces = split_text(text, options.chunks) if text else []
        for index, piece in enumerate(pieces):
            if index and options.delay:
                await asyncio.sleep(options.delay)
            last = index == len(pieces) - 1
            parts: list[Part] = [TextPart(text=piece), *(other if last else [])]
            await turn.artifact_chunk(parts, last=last, name="echo")
        if not pieces:
            # No text (or only empty text): the other parts, or the empty text itself.
            await turn.artifact_chunk(other or [TextPart(text="")], last=True, name="echo")
        if options.final_state == "input-required":
            prompt = f"Echoed {len(text)} characters. Send another message to continue."
            return AgentReply(TaskState.INPUT_REQUIRED, [TextPart(text=prompt)])
        return AgentReply(TaskState.COMPLETED)

    def _options_for(self, metadata: dict[str, Any] | None) -> EchoOptions:
        override = (metadata or {}).get("echo")
        if not isinstance(override, dict):
            return self._options
        try:
            return EchoOptions.model_validate(
                {**self._options.model_dump(by_alias=True), **override}
            )
        except ValidationError as err:
            raise ApplicationError(
                f"Invalid metadata.echo options: {err.errors(include_url=False)}",
                non_retryable=True,
            ) from err


def split_text(text: str, chunks: int) -> list[str]:
    """`text` in `chunks` consecutive pieces of near-equal length (fewer if the text is shorter)."""
    count = min(chunks, len(text))
    size, extra = divmod(len(text), count)
    pieces = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces
