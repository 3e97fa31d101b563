"""The Claude agent: the Anthropic Messages API through the official `anthropic` SDK, streamed.

Text deltas become artifact chunks as they arrive; the final status carries the whole reply and the task's
metadata the token usage. API errors map to outcomes: overloaded, rate-limited, 5xx and connection errors
raise a retryable error (Temporal retries the turn with backoff, and the new attempt restarts the artifact);
any other API error fails the task with the API's message. A cancel lands in the streaming loop, which
closes the HTTP request, so no tokens are generated after it.
"""

from __future__ import annotations

from typing import Any

import anthropic
from pydantic import BaseModel, ConfigDict, Field
from temporalio.exceptions import ApplicationError

from protocol import Message, Part, Task, TaskState, TextPart
from workers.agents.base import AgentReply, Turn

# Worth another attempt: timeout, conflict, rate limit and the server's own trouble (5xx, 529 =
# overloaded), also when it arrives as an error event in the middle of a stream (HTTP 200).
RETRYABLE_STATUSES = frozenset({408, 409, 429})
RETRYABLE_ERROR_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error"})


class ClaudeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = "claude-sonnet-4-5"
    system: str | None = None
    max_tokens: int = Field(default=1024, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)
    # The API's address; tests point it at a local server speaking the same protocol.
    base_url: str | None = None
    timeout_seconds: float = Field(default=600.0, gt=0)


class ClaudeAgent:
    def __init__(self, options: ClaudeOptions, api_key: str) -> None:
        self._options = options
        # Retries are Temporal's: a failed attempt is retried as a whole, with backoff.
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=options.base_url,
            max_retries=0,
            timeout=options.timeout_seconds,
        )

    async def run(self, turn: Turn) -> AgentReply:
        options = self._options
        request: dict[str, Any] = {
            "model": options.model,
            "max_tokens": options.max_tokens,
            "messages": conversation(turn.task),
        }
        if options.system is not None:
            request["system"] = options.system
        if options.temperature is not None:
            request["temperature"] = options.temperature
        reply: list[str] = []
        pending: str | None = None
        try:
            async with self._client.messages.stream(**request) as stream:
                async for delta in stream.text_stream:
                    # One delta is held back so that the last chunk can say it is the last.
                    if pending is not None:
                        await turn.artifact_chunk(
                            [TextPart(text=pending)], last=False, name="reply"
                        )
                    pending = delta
                    reply.append(delta)
                final = await stream.get_final_message()
        except anthropic.APIStatusError as err:
            retryable = (
                err.status_code in RETRYABLE_STATUSES
                or err.status_code >= 500
                or _error_type(err) in RETRYABLE_ERROR_TYPES
            )
            raise ApplicationError(
                f"Claude API error {err.status_code}: {_api_message(err)}",
                type="ClaudeAPIError",
                non_retryable=not retryable,
            ) from err
        except anthropic.APIConnectionError as err:
            raise ApplicationError(f"Claude API unreachable: {err}", type="ClaudeAPIError") from err
        await turn.artifact_chunk([TextPart(text=pending or "")], last=True, name="reply")
        usage = {
            "model": final.model,
            "inputTokens": final.usage.input_tokens,
            "outputTokens": final.usage.output_tokens,
            "stopReason": final.stop_reason,
        }
        parts: list[Part] = [TextPart(text="".join(reply))]
        return AgentReply(TaskState.COMPLETED, parts, metadata={"claude": usage})


def conversation(task: Task) -> list[dict[str, str]]:
    """The task's history as Messages API turns: user and agent messages alternate, text only."""
    turns: list[dict[str, str]] = []
    for message in task.history or []:
        role = "assistant" if message.role == "agent" else "user"
        text = _text(message)
        if not text:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1] = {"role": role, "content": f"{turns[-1]['content']}\n\n{text}"}
        else:
            turns.append({"role": role, "content": text})
    return turns


def _text(message: Message) -> str:
    return "\n".join(part.text for part in message.parts if isinstance(part, TextPart))


def _error_type(err: anthropic.APIStatusError) -> str | None:
    error = err.body.get("error") if isinstance(err.body, dict) else None
    return str(error.get("type")) if isinstance(error, dict) else None


def _api_message(err: anthropic.APIStatusError) -> str:
    body = err.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return err.message
