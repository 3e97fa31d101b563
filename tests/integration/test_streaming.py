"""message/stream and tasks/resubscribe against real gateway processes (uvicorn on loopback), the echo
worker, Temporal and Redis: exact frames, event ids equal to the Redis log's, resume with Last-Event-ID on
either of two replicas."""

from __future__ import annotations

import asyncio
import hashlib
import signal
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from protocol import Message, message_task_key, task_snapshot_key
from tests.a2a_schema import assert_valid_response
from tests.integration.conftest import LaunchGateway
from tests.integration.eventlog import final, log_entries, read_until
from tests.integration.sse import (
    Frame,
    GatewayProcess,
    SSEResponse,
    data_frames,
    echo_message,
    read_stream,
    rpc_body,
    stream_frames,
)
from tests.integration.test_tasks import stamped


def checked(response: SSEResponse, request_id: Any = 1) -> list[Frame]:
    """The frames of an A2A stream (no comment among them: every test stream is far shorter than the
    keep-alive interval), each checked against the schema and for the request's id."""
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    frames = data_frames(response)
    assert frames == response.frames
    for frame in frames:
        assert_valid_response(frame.data, "message/stream")
        assert frame.data["id"] == request_id
    return frames


def a2a_result(event: dict[str, Any]) -> dict[str, Any]:
    """What the A2A view of a log event carries as `result` (ARCHITECTURE.md, "Two views")."""
    kind = event["type"]
    if kind == "task.created":
        task: dict[str, Any] = event["task"]
        return task
    if kind == "task.status":
        return {
            "taskId": event["taskId"],
            "contextId": event["contextId"],
            "status": event["status"],
            "final": False,
            "kind": "status-update",
        }
    if kind == "task.progress":
        return {
            "taskId": event["taskId"],
            "contextId": event["contextId"],
            "artifact": event["artifact"],
            "append": event["append"],
            "lastChunk": event["lastChunk"],
            "kind": "artifact-update",
        }
    assert kind == "task.completed", event
    return {
        "taskId": event["taskId"],
        "contextId": event["contextId"],
        "status": event["task"]["status"],
        "final": True,
        "kind": "status-update",
    }


def event_id(frame: Frame) -> str:
    assert frame.id is not None, frame
    return frame.id


def as_log(frames: list[Frame]) -> list[tuple[str | None, dict[str, Any]]]:
    return [(frame.id, frame.data["result"]) for frame in frames]


def expected_frames(
    entries: list[tuple[str, dict[str, Any]]],
) -> list[tuple[str | None, dict[str, Any]]]:
    return [(entry_id, a2a_result(event)) for entry_id, event in entries]


async def test_message_stream_five_chunks_exact_frames(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> None:
    message = echo_message("one two three four five", chunks=5, delay=0.02)
    response = await read_stream(
        sse_client,
        "POST",
        gateway_a.url,
        json=rpc_body("message/stream", {"message": message}, "s-1"),
    )
    frames = checked(response, "s-1")
    assert response.complete
    task = frames[0].data["result"]
    task_id, context_id = task["id"], task["contextId"]
    artifact_id = frames[2].data["result"]["artifact"]["artifactId"]
    chunks = ["one t", "wo th", "ree f", "our ", "five"]
    results = [frame.data["result"] for frame in frames]
    for result in (results[0], results[1], results[-1]):
        stamped(result["status"])
    assert results == [
        {
            "id": task_id,
            "contextId": context_id,
            "status": {"state": "submitted"},
            "history": [{**message, "taskId": task_id, "contextId": context_id, "kind": "message"}],
            "kind": "task",
        },
        {
            "taskId": task_id,
            "contextId": context_id,
            "status": {"state": "working"},
            "final": False,
            "kind": "status-update",
        },
        *[
            {
                "taskId": task_id,
                "contextId": context_id,
                "artifact": {
                    "artifactId": artifact_id,
                    "name": "echo",
                    "parts": [{"kind": "text", "text": chunk}],
                },
                "append": index > 0,
                "lastChunk": index == 4,
                "kind": "artifact-update",
            }
            for index, chunk in enumerate(chunks)
        ],
        {
            "taskId": task_id,
            "contextId": context_id,
            "status": {"state": "completed"},
            "final": True,
            "kind": "status-update",
        },
    ]
    assert [frame.id for frame in frames] == [
        entry_id for entry_id, _ in await log_entries(redis, task_id)
    ]


async def test_message_stream_invalid_params_plain_json_rpc_error(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    body = rpc_body("message/stream", {"message": {"role": "user", "parts": []}}, 3)
    response = await sse_client.post(gateway_a.url, json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": 3,
        "error": {
            "code": -32602,
            "message": "Invalid parameters for message/stream",
            "data": [
                {
                    "field": "message.parts",
                    "message": "List should have at least 1 item after validation, not 0",
                },
                {"field": "message.messageId", "message": "Field required"},
            ],
        },
    }


async def test_stream_started_on_one_gateway_resubscribed_on_the_other_gets_the_rest(
    gateway_a: GatewayProcess,
    gateway_b: GatewayProcess,
    sse_client: httpx.AsyncClient,
    redis: Redis,
) -> None:
    message = echo_message("x" * 40, chunks=10, delay=0.1)
    started = await read_stream(
        sse_client,
        "POST",
        gateway_a.url,
        json=rpc_body("message/stream", {"message": message}),
        limit=3,
    )
    task_id = checked(started)[0].data["result"]["id"]
    resumed = checked(
        await read_stream(
            sse_client,
            "POST",
            gateway_b.url,
            json=rpc_body("tasks/resubscribe", {"id": task_id}, "r"),
        ),
        "r",
    )
    snapshot = resumed[0]
    assert snapshot.data["result"]["kind"] == "task"
    assert snapshot.data["result"]["status"]["state"] == "working"
    entries = await log_entries(redis, task_id)
    ids = [entry_id for entry_id, _ in entries]
    after = ids.index(event_id(snapshot)) + 1
    assert 3 <= after < len(ids)
    assert as_log(resumed[1:]) == expected_frames(entries[after:])
    assert resumed[-1].data["result"]["final"] is True


@pytest.mark.parametrize(
    ("method", "cut", "resume_on"),
    [
        ("message/stream", 1, "b"),
        ("message/stream", 50, "a"),
        ("message/stream", 99, "b"),
        ("message/stream", 100, "b"),
        ("tasks/resubscribe", 1, "a"),
        ("tasks/resubscribe", 50, "b"),
        ("tasks/resubscribe", 99, "a"),
    ],
)
async def test_cut_off_stream_resumes_after_last_event_id_exactly_once(
    gateway_a: GatewayProcess,
    gateway_b: GatewayProcess,
    sse_client: httpx.AsyncClient,
    redis: Redis,
    method: str,
    cut: int,
    resume_on: str,
) -> None:
    """100 events: task.created, working, 97 chunks, completed. The client reads `cut`, drops the
    connection, and reconnects with Last-Event-ID: a retried message/stream (same body) or a
    tasks/resubscribe. It gets events cut+1..100, once each, in order, and no second task starts."""
    message = echo_message("y" * 97, chunks=97, delay=0.01)
    request = rpc_body("message/stream", {"message": message}, 7)
    first = checked(
        await read_stream(sse_client, "POST", gateway_a.url, json=request, limit=cut), 7
    )
    assert len(first) == cut
    task_id = first[0].data["result"]["id"]
    gateway = gateway_a if resume_on == "a" else gateway_b
    retry = request if method == "message/stream" else rpc_body(method, {"id": task_id}, 7)
    resumed = checked(
        await read_stream(
            sse_client,
            "POST",
            gateway.url,
            json=retry,
            headers={"Last-Event-ID": event_id(first[-1])},
        ),
        7,
    )
    entries = await read_until(redis, task_id, final)
    assert len(entries) == 100
    log = expected_frames(await log_entries(redis, task_id))
    assert as_log(first) == log[:cut]
    assert as_log(resumed) == log[cut:]
    # The message's claim: its task, then the SHA-256 of its JSON.
    raw: Any = await redis.get(message_task_key(message["messageId"]))
    claim = raw.decode()
    stored = orjson.dumps(Message.model_validate(message).to_wire())
    assert claim.split(" ") == [task_id, hashlib.sha256(stored).hexdigest()]


async def test_resubscribe_unknown_task_one_error_event_then_close(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    response = await read_stream(
        sse_client, "POST", gateway_a.url, json=rpc_body("tasks/resubscribe", {"id": "nope"}, 5)
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.complete
    assert response.frames == [
        Frame(
            None,
            {
                "jsonrpc": "2.0",
                "id": 5,
                "error": {"code": -32001, "message": "Task not found: 'nope'"},
            },
        )
    ]


async def test_resubscribe_finished_task_snapshot_then_close(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> None:
    done = checked(
        await read_stream(
            sse_client,
            "POST",
            gateway_a.url,
            json=rpc_body("message/stream", {"message": echo_message("bye")}),
        )
    )
    task_id = done[0].data["result"]["id"]
    response = await read_stream(
        sse_client, "POST", gateway_a.url, json=rpc_body("tasks/resubscribe", {"id": task_id})
    )
    frames = checked(response)
    assert response.complete
    snapshot: Any = await redis.get(task_snapshot_key(task_id))
    assert as_log(frames) == [(done[-1].id, orjson.loads(snapshot))]
    assert frames[0].data["result"]["status"]["state"] == "completed"


async def test_client_disconnect_does_not_cancel_the_task(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> None:
    message = echo_message("keep going", chunks=4, delay=0.1)
    first = checked(
        await read_stream(
            sse_client,
            "POST",
            gateway_a.url,
            json=rpc_body("message/stream", {"message": message}),
            limit=1,
        )
    )
    task_id = first[0].data["result"]["id"]
    events = await read_until(redis, task_id, final)
    assert events[-1]["task"]["status"]["state"] == "completed"
    assert [event["type"] for event in events] == [
        "task.created",
        "task.status",
        *["task.progress"] * 4,
        "task.completed",
    ]


async def test_follow_up_message_stream_continues_an_input_required_task(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> None:
    question = echo_message("who?", finalState="input-required")
    turn_one = checked(
        await read_stream(
            sse_client,
            "POST",
            gateway_a.url,
            json=rpc_body("message/stream", {"message": question}),
        )
    )
    assert turn_one[-1].data["result"]["status"]["state"] == "input-required"
    assert turn_one[-1].data["result"]["final"] is True
    task_id = turn_one[0].data["result"]["id"]
    answer = {**echo_message("me", chunks=2), "taskId": task_id}
    response = await read_stream(
        sse_client,
        "POST",
        gateway_a.url,
        json=rpc_body("message/stream", {"message": answer}, 2),
    )
    turn_two = checked(response, 2)
    accepted = turn_two[0].data["result"]
    assert accepted["kind"] == "task"
    assert [m["messageId"] for m in accepted["history"] if m["role"] == "user"] == [
        question["messageId"],
        answer["messageId"],
    ]
    assert turn_two[0].id == turn_one[-1].id
    entries = await log_entries(redis, task_id)
    ids = [entry_id for entry_id, _ in entries]
    assert as_log(turn_two[1:]) == expected_frames(entries[ids.index(event_id(turn_one[-1])) + 1 :])
    assert [frame.data["result"]["kind"] for frame in turn_two] == [
        "task",
        "status-update",
        "artifact-update",
        "artifact-update",
        "status-update",
    ]
    assert turn_two[-1].data["result"]["status"]["state"] == "completed"


async def test_sigterm_ends_open_streams_at_once_and_the_gateway_exits_cleanly(
    launch_gateway: LaunchGateway, sse_client: httpx.AsyncClient
) -> None:
    """Shutdown does not wait out the graceful timeout (10 s) on streams: they end, and the clients
    resume elsewhere with Last-Event-ID."""
    with launch_gateway("sigterm") as gateway:
        waiting = checked(
            await read_stream(
                sse_client,
                "POST",
                gateway.url,
                json=rpc_body(
                    "message/stream",
                    {"message": echo_message("wait", finalState="input-required")},
                ),
            )
        )
        task_id = waiting[0].data["result"]["id"]
        async with sse_client.stream("GET", f"{gateway.url}/tasks/{task_id}/events") as response:
            frames = stream_frames(response)
            replayed = [await anext(frames) for _ in waiting]
            assert replayed[-1].data["type"] == "task.completed"
            gateway.process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(5):
                rest = [frame async for frame in frames]
        assert rest == []
        # uvicorn re-raises the signal once shut down, so the exit status is SIGTERM's.
        assert await asyncio.to_thread(gateway.process.wait, 5) == -signal.SIGTERM
        assert "Application shutdown complete." in gateway.output()
        assert "Exception" not in gateway.output()


async def test_tasks_get_is_never_behind_the_stream_on_either_replica(
    gateway_a: GatewayProcess, gateway_b: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    """Each gateway serves an open task's snapshot from memory between writes (Redis tells it of
    each one): after every frame of the stream, tasks/get on both replicas, twice, holds at least
    what the frame said."""
    chunks = ["one t", "wo th", "ree f", "our ", "five"]
    message = echo_message("one two three four five", chunks=5, delay=0.05)
    body = rpc_body("message/stream", {"message": message})
    seen: list[str] = []
    async with sse_client.stream("POST", gateway_a.url, json=body) as response:
        async for frame in stream_frames(response):
            result = frame.data["result"]
            if result["kind"] == "task":
                task_id = result["id"]
            elif result["kind"] == "artifact-update":
                seen.append(result["artifact"]["parts"][0]["text"])
            for gateway in (gateway_a, gateway_b, gateway_a, gateway_b):
                got = await sse_client.post(
                    gateway.url, json=rpc_body("tasks/get", {"id": task_id})
                )
                task = got.json()["result"]
                text = "".join(
                    part["text"]
                    for artifact in task.get("artifacts", [])
                    for part in artifact["parts"]
                )
                assert text.startswith("".join(seen)), (frame, task)
                if result.get("final"):
                    assert task["status"]["state"] == "completed"
    assert seen == chunks
