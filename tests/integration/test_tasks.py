"""message/send, tasks/get and tasks/cancel through the real stack: the app, Temporal, the echo worker, Redis."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from gateway.devstack.processes import free_port
from gateway.settings import GatewaySettings
from protocol import task_events_key, task_snapshot_key
from tests.a2a_schema import assert_valid
from tests.conftest import RpcClient, app_client
from tests.integration.ended import final_status
from tests.integration.eventlog import count, events, read_until
from workflows.payloads import CancelTaskInput
from workflows.task import TaskWorkflow

ACTIVITY_ENDS = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def fresh(label: str) -> str:
    """A message id of its own: a repeated id would get the task its first use went to."""
    return f"{label}-{uuid.uuid4()}"


def user_message(text: str, message_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "role": "user",
        "parts": [{"kind": "text", "text": text}],
        "messageId": message_id or fresh("m"),
        **extra,
    }


def stamped(status: dict[str, Any]) -> dict[str, Any]:
    """`status` with its timestamp checked for form and then dropped, for exact comparison."""
    assert TIMESTAMP.match(status.pop("timestamp")), status
    return status


async def send(rpc: RpcClient, message: dict[str, Any], **config: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"message": message}
    if config:
        params["configuration"] = config
    body = await rpc.call("message/send", params)
    assert "result" in body, body
    result: dict[str, Any] = body["result"]
    return result


async def test_message_send_blocking_returns_completed_task_with_echo_artifact(
    rpc: RpcClient, redis: Redis, temporal_client: Client
) -> None:
    message = user_message("hello")
    body = await rpc.call("message/send", {"message": message}, request_id="req-1")
    result = body["result"]
    task_id, context_id = result["id"], result["contextId"]
    artifact_id = result["artifacts"][0]["artifactId"]
    assert stamped(result["status"]) == {"state": "completed"}
    assert body == {
        "jsonrpc": "2.0",
        "id": "req-1",
        "result": {
            "id": task_id,
            "contextId": context_id,
            "status": {"state": "completed"},
            "history": [{**message, "taskId": task_id, "contextId": context_id, "kind": "message"}],
            "artifacts": [
                {
                    "artifactId": artifact_id,
                    "name": "echo",
                    "parts": [{"kind": "text", "text": "hello"}],
                }
            ],
            "kind": "task",
        },
    }
    # The answer came from the turn's final event in Redis; the workflow then completes with that state.
    handle = temporal_client.get_workflow_handle_for(TaskWorkflow.run, task_id)
    assert (await handle.result()).state == "completed"
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    # The worker wrote the log and the snapshot; the snapshot is the Task the client got.
    log = await events(redis, task_id)
    assert [(e["type"], (e.get("status") or {}).get("state")) for e in log] == [
        ("task.created", None),
        ("task.status", "working"),
        ("task.progress", None),
        ("task.completed", None),
    ]
    assert log[0]["task"]["status"]["state"] == "submitted"
    snapshot = orjson.loads(await redis.get(task_snapshot_key(task_id)) or b"null")
    stamped(snapshot["status"])
    assert snapshot == result
    assert log[-1]["task"] == snapshot | {"status": log[-1]["task"]["status"]}


async def test_message_send_keeps_client_context_id(rpc: RpcClient) -> None:
    result = await send(rpc, user_message("hi", contextId="my-context"))
    assert result["contextId"] == "my-context"
    assert result["history"][0]["contextId"] == "my-context"


async def test_message_send_non_blocking_then_cancel_stops_the_agent(
    rpc: RpcClient, redis: Redis, temporal_client: Client
) -> None:
    slow = {"echo": {"chunks": 50, "delay": 0.1}}
    message = user_message("x" * 50, metadata=slow)
    result = await send(rpc, message, blocking=False)
    task_id = result["id"]
    assert stamped(result["status"]) == {"state": "submitted"}
    assert result["history"] == [
        {**message, "taskId": task_id, "contextId": result["contextId"], "kind": "message"}
    ]
    await read_until(redis, task_id, count("task.progress"))

    canceled = await rpc.call("tasks/cancel", {"id": task_id}, request_id=2)
    assert stamped(canceled["result"]["status"]) == {"state": "canceled"}
    assert canceled["result"]["id"] == task_id
    log_after_cancel = await events(redis, task_id)
    assert log_after_cancel[-1]["type"] == "task.completed"
    final = log_after_cancel[-1]["task"]
    assert final["status"]["state"] == "canceled"
    # The turn heard the cancel over Redis and ended the task itself, keeping what it had streamed.
    progress = [e for e in log_after_cancel if e["type"] == "task.progress"]
    assert 1 <= len(progress) < 50
    streamed = "".join(e["artifact"]["parts"][0]["text"] for e in progress)
    assert final["artifacts"] == [
        {
            "artifactId": progress[0]["artifact"]["artifactId"],
            "name": "echo",
            "parts": [{"kind": "text", "text": streamed}],
        }
    ]
    assert canceled["result"] == {**final, "status": stamped(dict(final["status"]))}

    # The activity really stopped: it ended (completed, the task canceled) with nothing more in the
    # log in the time the remaining chunks would have taken; the workflow published nothing itself.
    handle = temporal_client.get_workflow_handle(task_id)
    history = [event async for event in handle.fetch_history_events()]
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled == ["run_agent"]
    ends = [e.event_type for e in history if e.event_type in ACTIVITY_ENDS]
    assert ends == [EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]
    await asyncio.sleep(1.0)
    assert await events(redis, task_id) == log_after_cancel
    assert (await final_status(temporal_client, task_id))["state"] == "canceled"
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED

    again = await rpc.call("tasks/cancel", {"id": task_id}, request_id=3)
    assert again == {
        "jsonrpc": "2.0",
        "id": 3,
        "error": {
            "code": -32002,
            "message": f"Task '{task_id}' is canceled; a terminal task cannot be canceled.",
        },
    }


async def test_the_workflows_cancel_alone_stops_the_agent(
    rpc: RpcClient, redis: Redis, temporal_client: Client
) -> None:
    """The durable backstop: the cancel update without the Redis message (as when no worker heard
    it) reaches the turn as the cancellation of its activity; the workflow ends the task."""
    slow = {"echo": {"chunks": 50, "delay": 0.1}}
    task_id = (await send(rpc, user_message("x" * 50, metadata=slow), blocking=False))["id"]
    await read_until(redis, task_id, count("task.progress"))
    handle = temporal_client.get_workflow_handle(task_id)
    await handle.execute_update(TaskWorkflow.cancel, CancelTaskInput())

    log = await events(redis, task_id)
    assert log[-1]["type"] == "task.completed"
    assert log[-1]["task"]["status"]["state"] == "canceled"
    assert [e["type"] for e in log].count("task.completed") == 1
    history = [event async for event in handle.fetch_history_events()]
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled == ["run_agent", "publish_event"]
    ends = [e.event_type for e in history if e.event_type in ACTIVITY_ENDS]
    assert ends == [
        EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
    ]
    await asyncio.sleep(1.0)
    assert await events(redis, task_id) == log
    assert (await final_status(temporal_client, task_id))["state"] == "canceled"
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED


async def test_message_send_follow_up_continues_input_required_task_in_same_workflow(
    rpc: RpcClient, temporal_client: Client
) -> None:
    ask = {"echo": {"finalState": "input-required"}}
    m1, m2 = fresh("m1"), fresh("m2")
    first = await send(rpc, user_message("first", m1, metadata=ask))
    task_id, context_id = first["id"], first["contextId"]
    prompt = first["status"]["message"]
    assert stamped(first["status"]) == {
        "state": "input-required",
        "message": {
            "role": "agent",
            "parts": [
                {"kind": "text", "text": "Echoed 5 characters. Send another message to continue."}
            ],
            "messageId": prompt["messageId"],
            "taskId": task_id,
            "contextId": context_id,
            "kind": "message",
        },
    }
    run_id = (await temporal_client.get_workflow_handle(task_id).describe()).run_id

    second = await send(rpc, user_message("second", m2, taskId=task_id, contextId=context_id))
    assert second["id"] == task_id
    assert stamped(second["status"]) == {"state": "completed"}
    assert [(m["role"], m["messageId"]) for m in second["history"]] == [
        ("user", m1),
        ("agent", prompt["messageId"]),
        ("user", m2),
    ]
    assert [a["parts"] for a in second["artifacts"]] == [
        [{"kind": "text", "text": "first"}],
        [{"kind": "text", "text": "second"}],
    ]
    await temporal_client.get_workflow_handle(task_id).result()
    description = await temporal_client.get_workflow_handle(task_id).describe()
    assert (description.run_id, description.status) == (run_id, WorkflowExecutionStatus.COMPLETED)


async def test_message_send_to_completed_task_invalid_params(rpc: RpcClient) -> None:
    done = await send(rpc, user_message("once"))
    body = await rpc.call("message/send", {"message": user_message("twice", taskId=done["id"])}, 5)
    assert body == {
        "jsonrpc": "2.0",
        "id": 5,
        "error": {
            "code": -32602,
            "message": f"Task '{done['id']}' is completed; a terminal task accepts no messages.",
        },
    }


async def test_message_send_to_working_task_invalid_params(rpc: RpcClient) -> None:
    slow = {"echo": {"chunks": 20, "delay": 0.1}}
    task = await send(rpc, user_message("abcdefghijklmnopqrst", metadata=slow), blocking=False)
    body = await rpc.call("message/send", {"message": user_message("more", taskId=task["id"])}, 6)
    assert body == {
        "jsonrpc": "2.0",
        "id": 6,
        "error": {
            "code": -32602,
            "message": f"Task '{task['id']}' is working; it accepts a message only when input-required.",
        },
    }
    await rpc.call("tasks/cancel", {"id": task["id"]})


async def test_message_send_follow_up_with_other_context_invalid_params(rpc: RpcClient) -> None:
    task = await send(rpc, user_message("q", metadata={"echo": {"finalState": "input-required"}}))
    message = user_message("a", taskId=task["id"], contextId="elsewhere")
    body = await rpc.call("message/send", {"message": message}, 7)
    assert body == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {
            "code": -32602,
            "message": f"Message contextId 'elsewhere' does not match task '{task['id']}' "
            f"(contextId '{task['contextId']}').",
        },
    }
    await rpc.call("tasks/cancel", {"id": task["id"]})


async def test_message_send_unknown_task_id_task_not_found(rpc: RpcClient) -> None:
    body = await rpc.call("message/send", {"message": user_message("?", taskId="no-such-task")}, 8)
    assert body == {
        "jsonrpc": "2.0",
        "id": 8,
        "error": {"code": -32001, "message": "Task not found: 'no-such-task'"},
    }


async def test_message_send_agent_failure_fails_task_with_reason(rpc: RpcClient) -> None:
    result = await send(rpc, user_message("boom", metadata={"echo": {"failOnTurn": 1}}))
    message = result["status"]["message"]
    assert stamped(result["status"]) == {
        "state": "failed",
        "message": {
            "role": "agent",
            "parts": [{"kind": "text", "text": "Agent 'echo' failed: scripted failure on turn 1"}],
            "messageId": message["messageId"],
            "taskId": result["id"],
            "contextId": result["contextId"],
            "kind": "message",
        },
    }


async def test_message_send_one_mebibyte_text_echoed(rpc: RpcClient) -> None:
    text = "é" * (512 * 1024)
    result = await send(rpc, user_message(text))
    assert result["status"]["state"] == "completed"
    assert result["artifacts"][0]["parts"] == [{"kind": "text", "text": text}]


async def test_message_send_unaccepted_output_modes_content_type_not_supported(
    rpc: RpcClient,
) -> None:
    params = {
        "message": user_message("hi"),
        "configuration": {"acceptedOutputModes": ["image/png"]},
    }
    assert await rpc.call("message/send", params, 9) == {
        "jsonrpc": "2.0",
        "id": 9,
        "error": {
            "code": -32005,
            "message": "Incompatible content types: this agent produces text/plain; "
            "configuration.acceptedOutputModes is ['image/png']",
        },
    }


async def test_message_send_negative_history_length_invalid_params(rpc: RpcClient) -> None:
    params = {"message": user_message("hi"), "configuration": {"historyLength": -1}}
    assert await rpc.call("message/send", params, 11) == {
        "jsonrpc": "2.0",
        "id": 11,
        "error": {
            "code": -32602,
            "message": "configuration.historyLength must be 0 or more, got -1",
        },
    }


async def test_message_send_history_length_trims_result(rpc: RpcClient) -> None:
    result = await send(rpc, user_message("hi"), historyLength=0)
    assert result["history"] == []


@pytest.fixture
async def three_message_task(rpc: RpcClient) -> dict[str, Any]:
    ask = {"echo": {"finalState": "input-required"}}
    first = await send(rpc, user_message("one", fresh("m1"), metadata=ask))
    return await send(rpc, user_message("two", fresh("m2"), taskId=first["id"]))


@pytest.mark.parametrize(
    ("history_length", "expected_ids"),
    [
        (None, ["m1", "agent", "m2"]),
        (0, []),
        (1, ["m2"]),
        (2, ["agent", "m2"]),
        (2147483647, ["m1", "agent", "m2"]),
    ],
    ids=["absent", "zero", "one", "two", "huge"],
)
async def test_tasks_get_history_length(
    rpc: RpcClient,
    three_message_task: dict[str, Any],
    history_length: int | None,
    expected_ids: list[str],
) -> None:
    params: dict[str, Any] = {"id": three_message_task["id"]}
    if history_length is not None:
        params["historyLength"] = history_length
    body = await rpc.call("tasks/get", params, 12)
    history = body["result"].pop("history")
    sent = dict(
        zip(
            ["m1", "agent", "m2"],
            [m["messageId"] for m in three_message_task["history"]],
            strict=True,
        )
    )
    assert [m["messageId"] for m in history] == [sent[i] for i in expected_ids]
    rest = {k: v for k, v in three_message_task.items() if k != "history"}
    assert body == {"jsonrpc": "2.0", "id": 12, "result": rest}


async def test_tasks_get_negative_history_length_invalid_params(
    rpc: RpcClient, three_message_task: dict[str, Any]
) -> None:
    body = await rpc.call("tasks/get", {"id": three_message_task["id"], "historyLength": -3}, 13)
    assert body == {
        "jsonrpc": "2.0",
        "id": 13,
        "error": {"code": -32602, "message": "historyLength must be 0 or more, got -3"},
    }


async def test_tasks_get_after_redis_keys_deleted_answers_from_workflow(
    rpc: RpcClient,
    redis: Redis,
    temporal_client: Client,
    gateway_settings: GatewaySettings,
    echo_worker: None,
) -> None:
    task = await send(rpc, user_message("remember me"))
    # A blocking send may answer from the Redis log, a workflow task before the workflow records the
    # turn's end; Redis loses the keys once the workflow has.
    await temporal_client.get_workflow_handle(task["id"]).result()
    await redis.delete(task_snapshot_key(task["id"]), task_events_key(task["id"]))
    # Another gateway: this one remembers the terminal task it answered.
    async with app_client(gateway_settings) as other:
        body = await RpcClient(other).call("tasks/get", {"id": task["id"]}, 14)
    assert body == {"jsonrpc": "2.0", "id": 14, "result": task}
    # ...and put it back in the cache.
    assert orjson.loads(await redis.get(task_snapshot_key(task["id"])) or b"null") == task


async def test_tasks_get_unknown_task_not_found(rpc: RpcClient) -> None:
    assert await rpc.call("tasks/get", {"id": "nope"}, 15) == {
        "jsonrpc": "2.0",
        "id": 15,
        "error": {"code": -32001, "message": "Task not found: 'nope'"},
    }


async def test_tasks_cancel_unknown_task_not_found(rpc: RpcClient) -> None:
    assert await rpc.call("tasks/cancel", {"id": "nope"}, 16) == {
        "jsonrpc": "2.0",
        "id": 16,
        "error": {"code": -32001, "message": "Task not found: 'nope'"},
    }


async def test_tasks_cancel_completed_task_not_cancelable(rpc: RpcClient) -> None:
    task = await send(rpc, user_message("done"))
    assert await rpc.call("tasks/cancel", {"id": task["id"]}, 17) == {
        "jsonrpc": "2.0",
        "id": 17,
        "error": {
            "code": -32002,
            "message": f"Task '{task['id']}' is completed; a terminal task cannot be canceled.",
        },
    }


async def test_body_over_limit_invalid_request_413(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/",
        content=b'{"jsonrpc":"2.0","id":1,"method":"message/send","params":'
        + b" " * (10 * 1024 * 1024),
    )
    assert (response.status_code, response.headers["content-type"]) == (413, "application/json")
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {
            "code": -32600,
            "message": "Request payload validation error: body exceeds 10485760 bytes",
        },
    }


async def test_agent_card_served_at_well_known_path(http: httpx.AsyncClient) -> None:
    response = await http.get("/.well-known/agent.json")
    assert response.status_code == 200
    card = response.json()
    assert_valid(card, "AgentCard")
    assert (card["url"], card["capabilities"]) == (
        "http://testserver/",
        {"streaming": True, "pushNotifications": True, "stateTransitionHistory": False},
    )


async def test_health_and_readiness(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ok"})


async def test_readiness_names_unreachable_redis(gateway_settings: GatewaySettings) -> None:
    closed_port = free_port()
    settings = gateway_settings.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{closed_port}/0", "call_timeout_seconds": 2}
    )
    async with app_client(settings) as http:
        ready = await http.get("/readyz")
        assert (ready.status_code, ready.json()) == (
            503,
            {"status": "unavailable", "failing": ["redis"]},
        )
        assert (await http.get("/healthz")).json() == {"status": "ok"}
