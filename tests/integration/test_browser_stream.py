"""The browser view of a task's events (`GET /tasks/{id}/events`, for `EventSource`) against real gateway
processes, the echo worker, Temporal and Redis: exact frames whose `id:` values are the Redis log's entry
ids, resume with `Last-Event-ID` on either replica, the HTTP answers that tell EventSource to stop or fail,
CORS, keep-alive comments, and a log whose beginning was trimmed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from protocol import task_events_key, task_snapshot_key
from tests.a2a_schema import assert_valid_response
from tests.integration.conftest import LaunchGateway
from tests.integration.eventlog import count, final, log_entries, read_until
from tests.integration.sse import (
    Frame,
    GatewayProcess,
    SSEResponse,
    echo_message,
    read_stream,
    rpc_body,
    stream_frames,
)
from tests.integration.test_tasks import stamped

KEEPALIVE = Frame(None, None, ["keep-alive"])


async def start_task(
    client: httpx.AsyncClient, gateway: GatewayProcess, message: dict[str, Any]
) -> dict[str, Any]:
    """The Task a non-blocking `message/send` of `message` started."""
    params = {"message": message, "configuration": {"blocking": False}}
    response = await client.post(gateway.url, json=rpc_body("message/send", params))
    assert response.status_code == 200
    body = response.json()
    assert_valid_response(body, "message/send")
    task: dict[str, Any] = body["result"]
    return task


async def finished_log(redis: Redis, task_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The task's whole log once its turn has ended (its last entry is task.completed)."""
    await read_until(redis, task_id, final)
    return await log_entries(redis, task_id)


async def snapshot(redis: Redis, task_id: str) -> dict[str, Any]:
    raw: Any = await redis.get(task_snapshot_key(task_id))
    task: dict[str, Any] = orjson.loads(raw)
    return task


def browser_data(event: dict[str, Any]) -> dict[str, Any]:
    """What the browser view of a log event carries as `data:` (ARCHITECTURE.md, "Two views")."""
    kind = event["type"]
    if kind in ("task.created", "task.completed"):
        return {"type": kind, "task": event["task"]}
    if kind == "task.status":
        return {"type": kind, "taskId": event["taskId"], "status": event["status"]}
    assert kind == "task.progress", event
    return {
        "type": kind,
        "taskId": event["taskId"],
        "artifact": event["artifact"],
        "append": event["append"],
        "lastChunk": event["lastChunk"],
    }


def expected_frames(entries: list[tuple[str, dict[str, Any]]]) -> list[Frame]:
    return [Frame(entry_id, browser_data(event)) for entry_id, event in entries]


def events_url(gateway: GatewayProcess, task_id: str) -> str:
    return f"{gateway.url}/tasks/{task_id}/events"


def opened(response: SSEResponse) -> SSEResponse:
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["cache-control"] == "no-cache"
    return response


@pytest.fixture(scope="module")
def cors_gateway(launch_gateway: LaunchGateway) -> Iterator[GatewayProcess]:
    with launch_gateway("cors", {"A2A_GATEWAY_CORS_ORIGINS": "http://app.example"}) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def keepalive_gateway(launch_gateway: LaunchGateway) -> Iterator[GatewayProcess]:
    with launch_gateway("keepalive", {"A2A_GATEWAY_STREAM_KEEPALIVE_SECONDS": "0.2"}) as gateway:
        yield gateway


@pytest.fixture(scope="module")
async def finished_task(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """A completed task of three chunks: its id and its whole log."""
    task = await start_task(sse_client, gateway_a, echo_message("done and dusted", chunks=3))
    return task["id"], await finished_log(redis, task["id"])


async def test_events_from_the_start_replay_then_live_exact_frames_with_log_ids(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> None:
    message = echo_message("one two three four five", chunks=5, delay=0.05)
    task = await start_task(sse_client, gateway_a, message)
    task_id, context_id = task["id"], task["contextId"]
    response = opened(await read_stream(sse_client, "GET", events_url(gateway_a, task_id)))
    assert response.complete
    assert response.frames == expected_frames(await log_entries(redis, task_id))

    payloads = [frame.data for frame in response.frames]
    artifact_id = payloads[2]["artifact"]["artifactId"]
    stamped(payloads[0]["task"]["status"])
    stamped(payloads[1]["status"])
    stamped(payloads[-1]["task"]["status"])
    history = [{**message, "taskId": task_id, "contextId": context_id, "kind": "message"}]
    chunks = ["one t", "wo th", "ree f", "our ", "five"]
    assert payloads == [
        {
            "type": "task.created",
            "task": {
                "id": task_id,
                "contextId": context_id,
                "status": {"state": "submitted"},
                "history": history,
                "kind": "task",
            },
        },
        {"type": "task.status", "taskId": task_id, "status": {"state": "working"}},
        *[
            {
                "type": "task.progress",
                "taskId": task_id,
                "artifact": {
                    "artifactId": artifact_id,
                    "name": "echo",
                    "parts": [{"kind": "text", "text": chunk}],
                },
                "append": index > 0,
                "lastChunk": index == 4,
            }
            for index, chunk in enumerate(chunks)
        ],
        {
            "type": "task.completed",
            "task": {
                "id": task_id,
                "contextId": context_id,
                "status": {"state": "completed"},
                "history": history,
                "artifacts": [
                    {
                        "artifactId": artifact_id,
                        "name": "echo",
                        "parts": [{"kind": "text", "text": chunk} for chunk in chunks],
                    }
                ],
                "kind": "task",
            },
        },
    ]


@pytest.mark.parametrize(("cut", "carrier"), [(1, "header"), (50, "query"), (99, "header")])
async def test_events_cut_off_resume_on_other_replica_after_last_event_id_exactly_once(
    gateway_a: GatewayProcess,
    gateway_b: GatewayProcess,
    sse_client: httpx.AsyncClient,
    redis: Redis,
    cut: int,
    carrier: str,
) -> None:
    """100 events: task.created, working, 97 chunks, completed. The browser reads `cut` of them on one
    replica, drops the connection and reconnects to the other with the id of the last one it got."""
    text = "".join(f"{index:03d}" for index in range(97))
    task = await start_task(sse_client, gateway_a, echo_message(text, chunks=97, delay=0.01))
    url = events_url(gateway_a, task["id"])
    first = opened(await read_stream(sse_client, "GET", url, limit=cut))
    last_id = first.frames[-1].id
    assert last_id is not None
    url = events_url(gateway_b, task["id"])
    if carrier == "header":
        resumed = await read_stream(sse_client, "GET", url, headers={"Last-Event-ID": last_id})
    else:
        resumed = await read_stream(sse_client, "GET", f"{url}?lastEventId={last_id}")
    assert opened(resumed).complete
    log = await finished_log(redis, task["id"])
    assert len(log) == 100
    assert first.frames == expected_frames(log[:cut])
    assert resumed.frames == expected_frames(log[cut:])


async def test_events_of_finished_task_resumed_at_its_last_id_answer_204(
    gateway_a: GatewayProcess,
    sse_client: httpx.AsyncClient,
    finished_task: tuple[str, list[tuple[str, dict[str, Any]]]],
) -> None:
    task_id, log = finished_task
    response = await sse_client.get(
        events_url(gateway_a, task_id), headers={"Last-Event-ID": log[-1][0]}
    )
    assert response.status_code == 204
    assert response.content == b""


async def test_events_of_unknown_task_answer_404_task_not_found(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    task_id = str(uuid.uuid4())
    response = await sse_client.get(events_url(gateway_a, task_id))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32001, "message": f"Task not found: '{task_id}'"},
    }


@pytest.mark.parametrize("carrier", ["header", "query"])
async def test_events_with_malformed_last_event_id_answer_400_invalid_params(
    gateway_a: GatewayProcess,
    sse_client: httpx.AsyncClient,
    finished_task: tuple[str, list[tuple[str, dict[str, Any]]]],
    carrier: str,
) -> None:
    url = events_url(gateway_a, finished_task[0])
    if carrier == "header":
        response = await sse_client.get(url, headers={"Last-Event-ID": "banana"})
    else:
        response = await sse_client.get(f"{url}?lastEventId=banana")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {
            "code": -32602,
            "message": "Last-Event-ID must be an event id this gateway sent "
            "(like 1700000000000-0), got 'banana'",
        },
    }


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [("http://app.example", "http://app.example"), ("http://other.example", None)],
)
async def test_events_cors_allows_only_configured_origin(
    cors_gateway: GatewayProcess,
    sse_client: httpx.AsyncClient,
    finished_task: tuple[str, list[tuple[str, dict[str, Any]]]],
    origin: str,
    allowed: str | None,
) -> None:
    task_id, log = finished_task
    response = opened(
        await read_stream(
            sse_client, "GET", events_url(cors_gateway, task_id), headers={"Origin": origin}
        )
    )
    assert response.headers.get("access-control-allow-origin") == allowed
    assert response.complete
    assert response.frames == expected_frames(log)


async def test_events_of_input_required_task_stay_open_with_keepalive_comments(
    keepalive_gateway: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> None:
    message = echo_message("anyone there?", chunks=2, finalState="input-required")
    task = await start_task(sse_client, keepalive_gateway, message)
    before: list[Frame] = []
    async with (
        asyncio.timeout(30),
        sse_client.stream("GET", events_url(keepalive_gateway, task["id"])) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        frames = stream_frames(response)
        async for frame in frames:
            before.append(frame)
            if frame.data is not None and frame.data["type"] == "task.completed":
                break
        after = [await anext(frames) for _ in range(3)]
    log = await log_entries(redis, task["id"])
    assert log[-1][1]["task"]["status"]["state"] == "input-required"
    # The wait for the worker to pick the task up may be bridged by keep-alives too.
    assert [frame for frame in before if frame.data is None] == [KEEPALIVE] * (
        len(before) - len(log)
    )
    assert [frame for frame in before if frame.data is not None] == expected_frames(log)
    assert after == [KEEPALIVE] * 3


async def test_events_resumed_before_trimmed_start_of_finished_task_give_snapshot_then_end(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> None:
    task = await start_task(sse_client, gateway_a, echo_message("z" * 40, chunks=40))
    task_id = task["id"]
    log = await finished_log(redis, task_id)
    assert len(log) == 43
    assert await redis.xtrim(task_events_key(task_id), maxlen=10, approximate=False) == 33
    assert await log_entries(redis, task_id) == log[-10:]
    expected = [Frame(log[-1][0], {"type": "task.created", "task": await snapshot(redis, task_id)})]
    assert expected[0].data["task"] == log[-1][1]["task"]
    url = events_url(gateway_a, task_id)
    headers = {"Last-Event-ID": log[2][0]}
    resumed = opened(await read_stream(sse_client, "GET", url, headers=headers))
    assert resumed.complete
    assert resumed.frames == expected
    fresh = opened(await read_stream(sse_client, "GET", url))
    assert fresh.complete
    assert fresh.frames == expected


def running_snapshot(
    entries: list[tuple[str, dict[str, Any]]],
) -> dict[str, Any]:
    """The Task of an echo turn as of the last of `entries` (task.created, working, some chunks)."""
    (_, created), (_, working), *progress = entries
    assert created["type"] == "task.created"
    assert working["type"] == "task.status"
    assert progress
    assert all(event["type"] == "task.progress" for _, event in progress)
    artifact = progress[0][1]["artifact"]
    parts = [part for _, event in progress for part in event["artifact"]["parts"]]
    return {
        **created["task"],
        "status": working["status"],
        "artifacts": [{**artifact, "parts": parts}],
    }


async def test_events_resumed_before_trimmed_start_of_running_task_give_snapshot_then_live(
    gateway_a: GatewayProcess,
    gateway_b: GatewayProcess,
    sse_client: httpx.AsyncClient,
    redis: Redis,
) -> None:
    text = "".join(f"{index:02d}" for index in range(20))
    task = await start_task(sse_client, gateway_a, echo_message(text, chunks=20, delay=0.15))
    task_id = task["id"]
    await read_until(redis, task_id, count("task.progress", 6))
    async with redis.pipeline(transaction=True) as transaction:
        transaction.xrange(task_events_key(task_id))
        transaction.xtrim(task_events_key(task_id), maxlen=3, approximate=False)
        read, trimmed = await transaction.execute()
    before = [(entry_id.decode(), orjson.loads(fields[b"event"])) for entry_id, fields in read]
    assert len(before) >= 8
    assert trimmed == len(before) - 3
    response = opened(
        await read_stream(
            sse_client,
            "GET",
            events_url(gateway_b, task_id),
            headers={"Last-Event-ID": before[2][0]},
        )
    )
    assert response.complete
    retained = await log_entries(redis, task_id)
    assert retained[:3] == before[-3:]
    log = before + retained[3:]
    assert len(log) == 23
    assert [event["type"] for _, event in log] == [
        "task.created",
        "task.status",
        *["task.progress"] * 20,
        "task.completed",
    ]
    ids = [entry_id for entry_id, _ in log]
    head = response.frames[0]
    assert head.id in ids
    newest = ids.index(head.id)
    # The snapshot stands in for the trimmed entries and every other one up to the newest at the time.
    assert newest >= len(before) - 1
    assert head == Frame(
        head.id, {"type": "task.created", "task": running_snapshot(log[: newest + 1])}
    )
    assert response.frames[1:] == expected_frames(log[newest + 1 :])
