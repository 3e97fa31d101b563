"""The Claude agent: the Anthropic Messages API through the official `anthropic` SDK, streamed.

Text deltas become artifact chunks as they arrive; the final status carries the whole reply and the task's
metadata the token usage. Tools come from the MCP servers of the agent's options (stdio transport, the
official `mcp` SDK): when the model asks for one, the call shows as a `working` status update carrying a
DataPart (`tool_executing`, then `tool_completed`) and its result goes back to the model. API errors map to outcomes: overloaded, rate-limited, 5xx and connection errors
raise a retryable error (Temporal retries the turn with backoff, and the new attempt restarts the artifact);
any other API error fails the task with the API's message. A cancel lands in the streaming loop, which
closes the HTTP request, so no tokens are generated after it.
"""

from __future__ import annotations

import base64
import contextlib
from typing import Any, Literal

import anthropic
import orjson
from mcp import ClientSession, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field
from temporalio.exceptions import ApplicationError

from protocol import DataPart, FileWithBytes, Message, Part, TaskState, TextPart
from workers.agents.base import AgentReply, Turn

# Worth another attempt: timeout, conflict, rate limit and the server's own trouble (5xx, 529 =
# overloaded), also when it arrives as an error event in the middle of a stream (HTTP 200).
RETRYABLE_STATUSES = frozenset({408, 409, 429})
RETRYABLE_ERROR_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error"})

tracer = trace.get_tracer(__name__)


class McpServer(BaseModel):
    """An MCP server the agent starts over stdio for each turn and offers the tools of."""

    model_config = ConfigDict(extra="forbid")

    command: str
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] | None = None


class ClaudeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    model: str = "claude-sonnet-4-5"
    system: str | None = None
    max_tokens: int = Field(default=1024, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)
    # The API's address; tests point it at a local server speaking the same protocol.
    base_url: str | None = None
    timeout_seconds: float = Field(default=600.0, gt=0)
    mcp_servers: list[McpServer] = Field(default_factory=list)
    # Model calls per turn at most, tool rounds included.
    max_rounds: int = Field(default=8, ge=1)
    # "input-required" keeps the task open as a conversation: each reply waits for the next message.
    final_state: Literal["completed", "input-required"] = Field(
        default="completed", alias="finalState"
    )


class ClaudeAgent:
    def __init__(self, options: ClaudeOptions, api_key: str) -> None:
        self._options = options
        self._api_key = api_key

    def quick(self, message: Message) -> bool:
        # A model call takes seconds to minutes.
        return False

    async def run(self, turn: Turn) -> AgentReply:
        # A client per turn: its connections close with the turn, also when the turn is cancelled.
        # Retries are Temporal's: a failed attempt is retried as a whole, with backoff.
        client = anthropic.AsyncAnthropic(
            api_key=self._api_key,
            base_url=self._options.base_url,
            max_retries=0,
            timeout=self._options.timeout_seconds,
        )
        async with client, contextlib.AsyncExitStack() as stack:
            tools = await _open_tools(stack, self._options.mcp_servers)
            return await self._converse(client, turn, tools)

    async def _converse(
        self,
        client: anthropic.AsyncAnthropic,
        turn: Turn,
        tools: dict[str, tuple[ClientSession, Any]],
    ) -> AgentReply:
        options = self._options
        messages = conversation([*await turn.context(), *(turn.task.history or [])])
        reply = _Reply(turn)
        usage = {"inputTokens": 0, "outputTokens": 0}
        for _ in range(options.max_rounds):
            final = await self._stream(client, messages, tools, reply)
            usage["inputTokens"] += final.usage.input_tokens
            usage["outputTokens"] += final.usage.output_tokens
            if final.stop_reason != "tool_use":
                break
            await reply.flush()
            messages.append({"role": "assistant", "content": [_block(b) for b in final.content]})
            results = [
                await _call_tool(turn, tools, block.id, block.name, block.input)
                for block in final.content
                if block.type == "tool_use"
            ]
            messages.append({"role": "user", "content": results})
        await reply.finish()
        metadata = {"model": final.model, **usage, "stopReason": final.stop_reason}
        parts: list[Part] = [TextPart(text=reply.text)]
        state = TaskState(options.final_state)
        return AgentReply(state, parts, metadata={"claude": metadata})

    async def _stream(
        self,
        client: anthropic.AsyncAnthropic,
        messages: list[dict[str, Any]],
        tools: dict[str, tuple[ClientSession, Any]],
        reply: _Reply,
    ) -> anthropic.types.Message:
        options = self._options
        request: dict[str, Any] = {
            "model": options.model,
            "max_tokens": options.max_tokens,
            "messages": messages,
        }
        if options.system is not None:
            request["system"] = options.system
        if options.temperature is not None:
            request["temperature"] = options.temperature
        if tools:
            request["tools"] = [spec for _, spec in tools.values()]
        # OpenTelemetry's GenAI conventions: one client span per model call, with its token counts.
        with tracer.start_as_current_span(
            f"chat {options.model}",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "anthropic",
                "gen_ai.request.model": options.model,
                "gen_ai.request.max_tokens": options.max_tokens,
            },
        ) as span:
            final = await self._call(client, request, reply)
            span.set_attributes(
                {
                    "gen_ai.response.id": final.id,
                    "gen_ai.response.model": final.model,
                    "gen_ai.response.finish_reasons": [final.stop_reason or ""],
                    "gen_ai.usage.input_tokens": final.usage.input_tokens,
                    "gen_ai.usage.output_tokens": final.usage.output_tokens,
                }
            )
            return final

    async def _call(
        self, client: anthropic.AsyncAnthropic, request: dict[str, Any], reply: _Reply
    ) -> anthropic.types.Message:
        try:
            async with client.messages.stream(**request) as stream:
                async for delta in stream.text_stream:
                    await reply.add(delta)
                return await stream.get_final_message()
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


class _Reply:
    """The reply's text as artifact chunks. One delta is held back so that the last chunk can say it
    is the last."""

    def __init__(self, turn: Turn) -> None:
        self._turn = turn
        self._pending: str | None = None
        self._parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self._parts)

    async def add(self, delta: str) -> None:
        await self.flush()
        self._pending = delta
        self._parts.append(delta)

    async def flush(self) -> None:
        """Send what is held back (before a tool event, so the order stays as the model wrote it)."""
        if self._pending is not None:
            await self._turn.artifact_chunk(
                [TextPart(text=self._pending)], last=False, name="reply"
            )
            self._pending = None

    async def finish(self) -> None:
        await self._turn.artifact_chunk(
            [TextPart(text=self._pending or "")], last=True, name="reply"
        )


async def _open_tools(
    stack: contextlib.AsyncExitStack, servers: list[McpServer]
) -> dict[str, tuple[ClientSession, Any]]:
    """Tool name -> (its server's session, its Messages API spec), for every configured MCP server."""
    tools: dict[str, tuple[ClientSession, Any]] = {}
    for server in servers:
        try:
            read, write = await stack.enter_async_context(
                stdio_client(
                    StdioServerParameters(command=server.command, args=server.args, env=server.env)
                )
            )
            session = await stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            listed = (await session.list_tools()).tools
        except (OSError, MCPError) as err:
            raise ApplicationError(
                f"MCP server '{server.command}' could not start: {err}", non_retryable=True
            ) from err
        for tool in listed:
            spec = {
                "name": tool.name,
                "description": tool.description or "",
                "input_schema": tool.input_schema,
            }
            tools[tool.name] = (session, spec)
    return tools


async def _call_tool(
    turn: Turn,
    tools: dict[str, tuple[ClientSession, Any]],
    tool_use_id: str,
    name: str,
    arguments: Any,
) -> dict[str, Any]:
    """Run one tool the model asked for, showing it as it happens; the `tool_result` block for the model."""
    await turn.progress(
        [DataPart(data={"event": "tool_executing", "tool": name, "input": arguments})]
    )
    if name not in tools:
        output, is_error = f"No tool named '{name}'", True
    else:
        try:
            result = await tools[name][0].call_tool(name, arguments)
        except MCPError as err:
            output, is_error = f"The tool failed: {err}", True
        else:
            output = "\n".join(c.text for c in getattr(result, "content", []) if c.type == "text")
            is_error = bool(getattr(result, "is_error", False))
    await turn.progress(
        [
            DataPart(
                data={
                    "event": "tool_completed",
                    "tool": name,
                    "output": output,
                    "isError": is_error,
                }
            )
        ]
    )
    return {
        "type": "tool_result",
        "tool_use_id": tool_use_id,
        "content": output,
        "is_error": is_error,
    }


def _block(block: Any) -> dict[str, Any]:
    """An assistant content block as a Messages API request param."""
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return {"type": "text", "text": block.text}


def conversation(history: list[Message]) -> list[dict[str, Any]]:
    """Messages as Messages API turns: user and agent alternate (neighbours of one role are merged).
    Text stays text; a DataPart is given as its JSON; image and PDF files as image and document blocks,
    text files as their text. Messages with nothing the model reads (tool steps) are left out."""
    turns: list[dict[str, Any]] = []
    for message in history:
        role = "assistant" if message.role == "agent" else "user"
        blocks = [block for part in message.parts if (block := _content(part)) is not None]
        if not blocks:
            continue
        content: str | list[dict[str, Any]] = blocks
        if all(block["type"] == "text" for block in blocks):
            content = "\n".join(block["text"] for block in blocks)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] = _joined(turns[-1]["content"], content)
        else:
            turns.append({"role": role, "content": content})
    return turns


def _content(part: Part) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, DataPart):
        if part.data.get("event") in ("tool_executing", "tool_completed"):
            return None
        return {"type": "text", "text": orjson.dumps(part.data).decode()}
    file = part.file
    mime = (file.mimeType or "").lower()
    if isinstance(file, FileWithBytes):
        if mime.startswith("text/"):
            return {"type": "text", "text": base64.b64decode(file.bytes).decode(errors="replace")}
        source: dict[str, Any] = {"type": "base64", "media_type": mime, "data": file.bytes}
    else:
        source = {"type": "url", "url": file.uri}
    return {"type": "document" if mime == "application/pdf" else "image", "source": source}


def _joined(
    first: str | list[dict[str, Any]], second: str | list[dict[str, Any]]
) -> str | list[dict[str, Any]]:
    if isinstance(first, str) and isinstance(second, str):
        return f"{first}\n\n{second}"
    as_blocks = [
        [{"type": "text", "text": content}] if isinstance(content, str) else content
        for content in (first, second)
    ]
    return [*as_blocks[0], *as_blocks[1]]


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
