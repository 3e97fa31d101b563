"""Content far beyond Temporal's payload limits: long conversations of big turns and a message near the
body limit go end to end (send, get, resubscribe, the browser stream), while the task's workflow history
holds references only and a long run continues as new without the client noticing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from tests.integration.conftest import LaunchGateway
from tests.integration.sse import GatewayProcess, echo_message, read_stream, rpc_body

pytestmark = pytest.mark.timeout(300)

TURN_CHARS = 100 * 1024
# What the history of a 40-turn conversation of 100 KB turns stays under (it holds references only:
# about 10 KB per turn).
HISTORY_BOUND_BYTES = 1024 * 1024
CONTINUE_AFTER_BYTES = 16 * 1024


async def rpc(client: httpx.AsyncClient, url: str, method: str, params: Any) -> dict[str, Any]:
    response = await client.post(url, json=rpc_body(method, params), timeout=60)
    body: dict[str, Any] = response.json()
    assert "result" in body, body
    result: dict[str, Any] = body["result"]
    return result


def turn_text(turn: int, chars: int = TURN_CHARS) -> str:
    """A different text per turn, `chars` long."""
    stamp = f"turn {turn:03d} "
    return (stamp * (chars // len(stamp) + 1))[:chars]


async def converse(client: httpx.AsyncClient, url: str, turns: int) -> dict[str, Any]:
    """A task of `turns` turns, each message `TURN_CHARS` long; input-required until the last."""
    task: dict[str, Any] = {}
    for turn in range(turns):
        final = "completed" if turn == turns - 1 else "input-required"
        message = echo_message(turn_text(turn), finalState=final)
        if task:
            message["taskId"] = task["id"]
        task = await rpc(client, url, "message/send", {"message": message})
        assert task["status"]["state"] == final, (turn, task["status"])
    return task


def user_texts(task: dict[str, Any]) -> list[str]:
    return [message["parts"][0]["text"] for message in task["history"] if message["role"] == "user"]


def artifact_texts(task: dict[str, Any]) -> list[str]:
    return ["".join(part["text"] for part in a["parts"]) for a in task["artifacts"]]


async def history_size(temporal_client: Client, task_id: str) -> int:
    info = (await temporal_client.get_workflow_handle(task_id).describe()).raw_description
    return int(info.workflow_execution_info.history_size_bytes)


async def continued_as_new(temporal_client: Client, task_id: str) -> bool:
    """Whether the task's workflow runs now in a later run than its first."""
    info = (await temporal_client.get_workflow_handle(task_id).describe()).raw_description
    execution = info.workflow_execution_info
    return bool(execution.first_run_id) and execution.first_run_id != execution.execution.run_id


async def test_forty_turns_of_100_kb_complete_and_read_back_whole(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, temporal_client: Client
) -> None:
    task = await converse(sse_client, gateway_a.url, 40)
    texts = [turn_text(turn) for turn in range(40)]
    got = await rpc(sse_client, gateway_a.url, "tasks/get", {"id": task["id"]})
    assert got == task
    assert user_texts(got) == texts
    assert artifact_texts(got) == texts
    # The whole task is about 8 MB; its workflow history holds references only.
    assert await history_size(temporal_client, task["id"]) < HISTORY_BOUND_BYTES

    resubscribed = await read_stream(
        sse_client,
        "POST",
        gateway_a.url,
        json=rpc_body("tasks/resubscribe", {"id": task["id"]}),
        deadline=60,
    )
    frames = [frame.data for frame in resubscribed.frames if frame.data is not None]
    assert frames == [{"jsonrpc": "2.0", "id": 1, "result": task}]

    browser = await read_stream(
        sse_client, "GET", f"{gateway_a.url}/tasks/{task['id']}/events", deadline=60
    )
    events = [frame.data for frame in browser.frames if frame.data is not None]
    turn_events = ["task.status", "task.progress", "task.completed"]
    assert [event["type"] for event in events] == ["task.created", *turn_events * 40]
    chunks = [event["artifact"] for event in events if event["type"] == "task.progress"]
    assert ["".join(part["text"] for part in chunk["parts"]) for chunk in chunks] == texts
    assert events[-1]["task"] == got


async def test_a_9_mib_message_completes_and_reads_back_whole(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, temporal_client: Client
) -> None:
    text = turn_text(0, 9 * 1024 * 1024)
    task = await rpc(sse_client, gateway_a.url, "message/send", {"message": echo_message(text)})
    assert task["status"]["state"] == "completed"
    assert user_texts(task) == [text]
    assert artifact_texts(task) == [text]
    assert await rpc(sse_client, gateway_a.url, "tasks/get", {"id": task["id"]}) == task
    assert await history_size(temporal_client, task["id"]) < 64 * 1024


@pytest.fixture(scope="module")
def short_runs(launch_gateway: LaunchGateway) -> Iterator[GatewayProcess]:
    env = {"A2A_GATEWAY_WORKFLOW_HISTORY_MAX_BYTES": str(CONTINUE_AFTER_BYTES)}
    with launch_gateway("short-runs", env) as gateway:
        yield gateway


async def test_a_long_task_continues_as_new_without_the_client_noticing(
    short_runs: GatewayProcess, sse_client: httpx.AsyncClient, temporal_client: Client
) -> None:
    turns = 30
    task = await converse(sse_client, short_runs.url, turns)
    assert user_texts(task) == [turn_text(turn) for turn in range(turns)]
    assert await continued_as_new(temporal_client, task["id"])
    # Each run's history stays near the bound: one turn past it at most.
    assert await history_size(temporal_client, task["id"]) < 2 * CONTINUE_AFTER_BYTES
    assert await rpc(sse_client, short_runs.url, "tasks/get", {"id": task["id"]}) == task
