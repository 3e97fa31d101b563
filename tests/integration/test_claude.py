"""The Claude agent through the whole stack, with the real `anthropic` SDK talking to a local server that
speaks the Messages streaming wire format."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from config.agents import AgentConfig, AgentsConfigError
from tests.integration.conftest import AgentWorker, LaunchGateway
from tests.integration.eventlog import count, read_until
from tests.integration.fake_claude import Failure, FakeClaude, Stream, ToolUse, fake_claude
from tests.integration.sse import (
    GatewayProcess,
    echo_message,
    read_events,
    rpc_body,
)
from workers import build_agent

MCP_SERVER = Path(__file__).with_name("mcp_calc.py")


@pytest.fixture(scope="module")
async def claude_api() -> AsyncIterator[FakeClaude]:
    async with fake_claude() as fake:
        yield fake


@pytest.fixture(scope="module")
def agents_file(tmp_path_factory: pytest.TempPathFactory, claude_api: FakeClaude) -> Path:
    path = tmp_path_factory.mktemp("claude") / "agents.toml"
    path.write_text(
        f"""
[agents.claude]
kind = "claude"
task_queue = "test-claude-{uuid.uuid4().hex[:8]}"
[agents.claude.options]
model = "claude-test"
system = "Be brief."
max_tokens = 100
base_url = "{claude_api.url}"

[agents.chat]
kind = "claude"
task_queue = "test-chat-{uuid.uuid4().hex[:8]}"
[agents.chat.options]
model = "claude-test"
base_url = "{claude_api.url}"
finalState = "input-required"

[agents.calculator]
kind = "claude"
task_queue = "test-calculator-{uuid.uuid4().hex[:8]}"
[agents.calculator.options]
model = "claude-test"
base_url = "{claude_api.url}"
mcp_servers = [{{ command = "{sys.executable}", args = ["{MCP_SERVER}"] }}]
"""
    )
    return path


@pytest.fixture(scope="module")
async def claude_worker(agent_worker: AgentWorker, agents_file: Path) -> AsyncIterator[None]:
    """Workers for every agent of the file."""
    key = {"anthropic_api_key": "test-key"}
    async with (
        agent_worker(agents_file, "claude", **key),
        agent_worker(agents_file, "calculator", **key),
        agent_worker(agents_file, "chat", **key),
    ):
        yield


@pytest.fixture(scope="module")
def claude_gateway(
    launch_gateway: LaunchGateway, agents_file: Path, claude_worker: None
) -> Iterator[GatewayProcess]:
    with launch_gateway("claude", {"A2A_CONFIG": str(agents_file)}) as gateway:
        yield gateway


def results(frames: list[Any]) -> list[dict[str, Any]]:
    return [frame.data["result"] for frame in frames]


def texts(results: list[dict[str, Any]]) -> list[tuple[str, bool, bool]]:
    """(text, append, lastChunk) of each artifact update."""
    return [
        (r["artifact"]["parts"][0]["text"], r["append"], r["lastChunk"])
        for r in results
        if r["kind"] == "artifact-update"
    ]


async def test_tokens_stream_as_artifact_chunks_and_usage_lands_in_metadata(
    claude_gateway: GatewayProcess, claude_api: FakeClaude, sse_client: httpx.AsyncClient
) -> None:
    claude_api.expect(Stream(["Hel", "lo ", "world"]))
    frames = await read_events(
        sse_client,
        "POST",
        claude_gateway.url,
        json=rpc_body("message/stream", {"message": echo_message("hi there")}),
    )
    streamed = results(frames)
    assert [r["kind"] for r in streamed] == [
        "task",
        "status-update",
        "artifact-update",
        "artifact-update",
        "artifact-update",
        "status-update",
    ]
    assert texts(streamed) == [("Hel", False, False), ("lo ", True, False), ("world", True, True)]
    assert streamed[-1]["status"]["state"] == "completed"
    assert streamed[-1]["final"] is True
    task_id = streamed[0]["id"]
    got = await sse_client.post(claude_gateway.url, json=rpc_body("tasks/get", {"id": task_id}))
    task = got.json()["result"]
    assert task["status"]["message"]["parts"] == [{"kind": "text", "text": "Hello world"}]
    assert task["artifacts"][0]["parts"] == [
        {"kind": "text", "text": "Hel"},
        {"kind": "text", "text": "lo "},
        {"kind": "text", "text": "world"},
    ]
    assert task["metadata"] == {
        "claude": {
            "model": "claude-test",
            "inputTokens": 10,
            "outputTokens": 15,
            "stopReason": "end_turn",
        }
    }
    assert claude_api.requests == [
        {
            "model": "claude-test",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "hi there"}],
            "system": "Be brief.",
            "stream": True,
        }
    ]
    assert claude_api.headers[0]["authorization"] == "Bearer test-key"


async def test_overloaded_mid_stream_retries_and_the_artifact_restarts(
    claude_gateway: GatewayProcess, claude_api: FakeClaude, sse_client: httpx.AsyncClient
) -> None:
    claude_api.expect(
        Stream(["par", "tial"], error_type="overloaded_error"), Stream(["Full ", "text"])
    )
    frames = await read_events(
        sse_client,
        "POST",
        claude_gateway.url,
        json=rpc_body("message/stream", {"message": echo_message("again")}),
    )
    streamed = results(frames)
    # The first attempt got as far as one chunk; the second starts the artifact again (append false).
    assert texts(streamed) == [
        ("par", False, False),
        ("Full ", False, False),
        ("text", True, True),
    ]
    assert streamed[-1]["status"]["state"] == "completed"
    task_id = streamed[0]["id"]
    got = await sse_client.post(claude_gateway.url, json=rpc_body("tasks/get", {"id": task_id}))
    assert got.json()["result"]["artifacts"][0]["parts"] == [
        {"kind": "text", "text": "Full "},
        {"kind": "text", "text": "text"},
    ]
    assert len(claude_api.requests) == 2


async def test_a_bad_request_fails_the_task_with_the_api_message(
    claude_gateway: GatewayProcess, claude_api: FakeClaude, sse_client: httpx.AsyncClient
) -> None:
    claude_api.expect(
        Failure(400, "invalid_request_error", "max_tokens: 100 > 64, the maximum for this model")
    )
    response = await sse_client.post(
        claude_gateway.url, json=rpc_body("message/send", {"message": echo_message("x")})
    )
    task = response.json()["result"]
    assert task["status"]["state"] == "failed"
    assert task["status"]["message"]["parts"] == [
        {
            "kind": "text",
            "text": "Agent 'claude' failed: Claude API error 400: "
            "max_tokens: 100 > 64, the maximum for this model",
        }
    ]
    assert len(claude_api.requests) == 1


async def test_cancel_mid_stream_closes_the_request_to_the_model(
    claude_gateway: GatewayProcess,
    claude_api: FakeClaude,
    sse_client: httpx.AsyncClient,
    redis: Redis,
) -> None:
    deltas = [f"w{i} " for i in range(100)]
    claude_api.expect(Stream(deltas, delay=0.1))
    params = {"message": echo_message("talk"), "configuration": {"blocking": False}}
    started = await sse_client.post(claude_gateway.url, json=rpc_body("message/send", params))
    task_id = started.json()["result"]["id"]
    await read_until(redis, task_id, count("task.progress", 2))
    canceled = await sse_client.post(
        claude_gateway.url, json=rpc_body("tasks/cancel", {"id": task_id})
    )
    assert canceled.json()["result"]["status"]["state"] == "canceled"
    # The cancel returns once the activity has stopped, which closes the streaming request.
    async with asyncio.timeout(1):
        await claude_api.disconnected.wait()
    sent_at_cancel = len(claude_api.sent)
    await asyncio.sleep(0.3)
    assert len(claude_api.sent) == sent_at_cancel < len(deltas)


async def test_a_tool_call_through_an_mcp_server_shows_as_events_and_feeds_the_model(
    claude_gateway: GatewayProcess, claude_api: FakeClaude, sse_client: httpx.AsyncClient
) -> None:
    claude_api.expect(
        Stream(["Let me add. "], tool_use=ToolUse("toolu_1", "add", {"a": 2, "b": 3})),
        Stream(["It is ", "5."]),
    )
    frames = await read_events(
        sse_client,
        "POST",
        f"{claude_gateway.url}/agents/calculator",
        json=rpc_body("message/stream", {"message": echo_message("2+3?")}),
    )
    streamed = results(frames)
    steps = [
        (r["kind"], r["status"]["message"]["parts"][0]["data"])
        for r in streamed
        if r["kind"] == "status-update" and not r["final"] and "message" in r["status"]
    ]
    assert steps == [
        ("status-update", {"event": "tool_executing", "tool": "add", "input": {"a": 2, "b": 3}}),
        (
            "status-update",
            {"event": "tool_completed", "tool": "add", "output": "5", "isError": False},
        ),
    ]
    kinds = [r["kind"] if r["kind"] != "status-update" else r["status"]["state"] for r in streamed]
    assert kinds == [
        "task",
        "working",
        "artifact-update",
        "working",
        "working",
        "artifact-update",
        "artifact-update",
        "completed",
    ]
    assert texts(streamed) == [
        ("Let me add. ", False, False),
        ("It is ", True, False),
        ("5.", True, True),
    ]
    first, second = claude_api.requests
    assert first["tools"] == [
        {
            "name": "add",
            "description": "Add two integers.",
            "input_schema": {
                "properties": {
                    "a": {"title": "A", "type": "integer"},
                    "b": {"title": "B", "type": "integer"},
                },
                "required": ["a", "b"],
                "title": "addArguments",
                "type": "object",
            },
        }
    ]
    assert second["messages"] == [
        {"role": "user", "content": "2+3?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me add. "},
                {"type": "tool_use", "id": "toolu_1", "name": "add", "input": {"a": 2, "b": 3}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "5", "is_error": False}
            ],
        },
    ]


async def test_http_529_then_success_is_retried_and_the_text_arrives_once(
    claude_gateway: GatewayProcess, claude_api: FakeClaude, sse_client: httpx.AsyncClient
) -> None:
    claude_api.expect(Failure(529, "overloaded_error", "Overloaded"), Stream(["once"]))
    response = await sse_client.post(
        claude_gateway.url, json=rpc_body("message/send", {"message": echo_message("hello")})
    )
    task = response.json()["result"]
    assert task["status"]["state"] == "completed"
    assert task["artifacts"][0]["parts"] == [{"kind": "text", "text": "once"}]
    assert len(claude_api.requests) == 2


async def test_a_conversation_in_one_task_continues_with_its_history(
    claude_gateway: GatewayProcess, claude_api: FakeClaude, sse_client: httpx.AsyncClient
) -> None:
    claude_api.expect(Stream(["Which city?"]), Stream(["Sunny in Oslo."]))
    url = f"{claude_gateway.url}/agents/chat"
    first = await sse_client.post(
        url, json=rpc_body("message/send", {"message": echo_message("Weather?")})
    )
    task = first.json()["result"]
    assert task["status"]["state"] == "input-required"
    follow = {**echo_message("Oslo"), "taskId": task["id"]}
    second = await sse_client.post(url, json=rpc_body("message/send", {"message": follow}))
    assert second.json()["result"]["id"] == task["id"]
    assert second.json()["result"]["status"]["message"]["parts"] == [
        {"kind": "text", "text": "Sunny in Oslo."}
    ]
    assert claude_api.requests[1]["messages"] == [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "Which city?"},
        {"role": "user", "content": "Oslo"},
    ]


async def test_a_new_task_in_the_context_sees_its_earlier_turns(
    claude_gateway: GatewayProcess, claude_api: FakeClaude, sse_client: httpx.AsyncClient
) -> None:
    claude_api.expect(Stream(["Hello ", "Ann."]), Stream(["Ann."]))
    first = await sse_client.post(
        claude_gateway.url,
        json=rpc_body("message/send", {"message": echo_message("My name is Ann.")}),
    )
    context_id = first.json()["result"]["contextId"]
    follow = {**echo_message("What is my name?"), "contextId": context_id}
    second = await sse_client.post(
        claude_gateway.url, json=rpc_body("message/send", {"message": follow})
    )
    assert second.json()["result"]["contextId"] == context_id
    assert claude_api.requests[1]["messages"] == [
        {"role": "user", "content": "My name is Ann."},
        {"role": "assistant", "content": "Hello Ann."},
        {"role": "user", "content": "What is my name?"},
    ]


async def test_files_and_data_reach_the_model_as_content_blocks(
    claude_gateway: GatewayProcess, claude_api: FakeClaude, sse_client: httpx.AsyncClient
) -> None:
    claude_api.expect(Stream(["A red dot."]))
    message = {
        **echo_message("What is this?"),
        "parts": [
            {"kind": "text", "text": "What is this?"},
            {"kind": "file", "file": {"bytes": "iVBORw0KGgo=", "mimeType": "image/png"}},
            {
                "kind": "file",
                "file": {"uri": "https://example.com/a.pdf", "mimeType": "application/pdf"},
            },
            {"kind": "data", "data": {"size": 3}},
        ],
    }
    response = await sse_client.post(
        claude_gateway.url, json=rpc_body("message/send", {"message": message})
    )
    assert response.json()["result"]["status"]["state"] == "completed"
    assert claude_api.requests[0]["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
                {
                    "type": "document",
                    "source": {"type": "url", "url": "https://example.com/a.pdf"},
                },
                {"type": "text", "text": '{"size":3}'},
            ],
        }
    ]


async def test_a_file_type_the_model_cannot_read_is_refused_with_32005(
    claude_gateway: GatewayProcess, claude_api: FakeClaude, sse_client: httpx.AsyncClient
) -> None:
    claude_api.expect()
    message = {
        **echo_message("unpack this"),
        "parts": [{"kind": "file", "file": {"bytes": "UEsDBA==", "mimeType": "application/zip"}}],
    }
    response = await sse_client.post(
        claude_gateway.url, json=rpc_body("message/send", {"message": message}, 9)
    )
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": 9,
        "error": {
            "code": -32005,
            "message": "Incompatible content types: message.parts[0] is a application/zip file; "
            "this agent takes application/pdf, image/gif, image/jpeg, image/png, image/webp, "
            "text/plain",
        },
    }
    assert claude_api.requests == []


def test_a_claude_agent_needs_an_api_key() -> None:
    with pytest.raises(AgentsConfigError) as caught:
        build_agent("helper", AgentConfig(kind="claude"))
    assert str(caught.value) == (
        "agent 'helper' is a Claude agent: set ANTHROPIC_API_KEY to run its worker"
    )
