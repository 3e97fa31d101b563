"""A2A 1.0 (JSON-RPC and HTTP+JSON) and 0.3 beside 0.2.5 on one gateway: exact responses and frames,
each validated against the 1.0 proto (or the 0.3 schema)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.a2a_v1_schema import assert_valid_v03, assert_valid_v1, v1_part
from tests.integration.sse import GatewayProcess, read_stream, rpc_body
from tests.integration.test_tasks import stamped

V1_HEADERS = {"A2A-Version": "1.0"}
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


def v1_message(text: str, **echo: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "ROLE_USER",
        "parts": [{"text": text}],
        "messageId": str(uuid.uuid4()),
    }
    if echo:
        message["metadata"] = {"echo": echo}
    return message


def reason(code: int, message: str, why: str, request_id: Any = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "error": {
            "code": code,
            "message": message,
            "data": [{"@type": ERROR_INFO, "reason": why, "domain": "a2a-protocol.org"}],
        },
    }


async def call(
    client: httpx.AsyncClient, url: str, method: str, params: Any, request_id: Any = 1
) -> dict[str, Any]:
    response = await client.post(url, json=rpc_body(method, params, request_id), headers=V1_HEADERS)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def send(client: httpx.AsyncClient, url: str, message: dict[str, Any]) -> dict[str, Any]:
    body = await call(client, url, "SendMessage", {"message": message})
    task: dict[str, Any] = body["result"]["task"]
    assert_valid_v1(task, "Task")
    return task


async def test_agent_card_serves_1_0_and_0_3_clients(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    old = (await sse_client.get(f"{gateway_a.url}/.well-known/agent.json")).json()
    card = (await sse_client.get(f"{gateway_a.url}/.well-known/agent-card.json")).json()
    root = f"{gateway_a.url}/"
    assert card["supportedInterfaces"] == [
        {"url": root, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
        {"url": f"{gateway_a.url}/rest", "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"},
        {"url": root, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
    ]
    assert card == {
        **old,
        "supportedInterfaces": card["supportedInterfaces"],
        "protocolVersion": "0.3.0",
        "capabilities": {**old["capabilities"], "streaming": True, "pushNotifications": True},
    }
    assert old["protocolVersion"] == "0.2.5"
    assert_valid_v1(v1_part(card), "AgentCard")
    assert_valid_v03(card, "AgentCard")
    named = (
        await sse_client.get(f"{gateway_a.url}/agents/echo/.well-known/agent-card.json")
    ).json()
    assert named["supportedInterfaces"][1]["url"] == f"{gateway_a.url}/agents/echo/rest"


async def test_send_message_blocking_returns_the_task_in_1_0_shapes(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    message = v1_message("hello")
    task = await send(sse_client, gateway_a.url, message)
    stamped(task["status"])
    artifact_id = task["artifacts"][0]["artifactId"]
    assert task == {
        "id": task["id"],
        "contextId": task["contextId"],
        "status": {"state": "TASK_STATE_COMPLETED"},
        "history": [{**message, "taskId": task["id"], "contextId": task["contextId"]}],
        "artifacts": [{"artifactId": artifact_id, "name": "echo", "parts": [{"text": "hello"}]}],
    }
    got = await call(sse_client, gateway_a.url, "GetTask", {"id": task["id"], "historyLength": 0})
    assert_valid_v1(got["result"], "Task")
    assert "history" not in got["result"]
    assert got["result"]["artifacts"] == task["artifacts"]


async def test_send_streaming_message_frames_and_exact_resume(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    message = v1_message("one two three", chunks=3, delay=0.02)
    body = rpc_body("SendStreamingMessage", {"message": message}, "s1")
    response = await read_stream(sse_client, "POST", gateway_a.url, json=body, headers=V1_HEADERS)
    frames = [frame for frame in response.frames if frame.data is not None]
    results = [frame.data["result"] for frame in frames]
    for result in results:
        assert_valid_v1(result, "StreamResponse")
    assert {frame.data["id"] for frame in frames} == {"s1"}
    assert [next(iter(result)) for result in results] == [
        "task",
        "statusUpdate",
        "artifactUpdate",
        "artifactUpdate",
        "artifactUpdate",
        "statusUpdate",
    ]
    task_id = results[0]["task"]["id"]
    assert results[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert [r["artifactUpdate"]["append"] for r in results[2:5]] == [False, True, True]
    assert [r["artifactUpdate"]["lastChunk"] for r in results[2:5]] == [False, False, True]
    resumed = await read_stream(
        sse_client,
        "POST",
        gateway_a.url,
        json=rpc_body("SendStreamingMessage", {"message": message}, "s2"),
        headers={**V1_HEADERS, "Last-Event-ID": frames[2].id or ""},
    )
    again = [frame for frame in resumed.frames if frame.data is not None]
    assert [(frame.id, frame.data["result"]) for frame in again] == [
        (frame.id, frame.data["result"]) for frame in frames[3:]
    ]
    assert results[-1]["statusUpdate"]["taskId"] == task_id


async def test_list_tasks_newest_first_filtered_and_paged(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    context = str(uuid.uuid4())
    ids = []
    for text in ("a", "b", "c"):
        task = await send(sse_client, gateway_a.url, {**v1_message(text), "contextId": context})
        ids.append(task["id"])
    first = await call(
        sse_client, gateway_a.url, "ListTasks", {"contextId": context, "pageSize": 2}
    )
    page = first["result"]
    assert_valid_v1(page, "ListTasksResponse")
    assert [task["id"] for task in page["tasks"]] == [ids[2], ids[1]]
    assert (page["pageSize"], page["totalSize"]) == (2, 3)
    assert all("artifacts" not in task for task in page["tasks"])
    second = await call(
        sse_client,
        gateway_a.url,
        "ListTasks",
        {
            "contextId": context,
            "pageSize": 2,
            "pageToken": page["nextPageToken"],
            "includeArtifacts": True,
        },
    )
    assert [task["id"] for task in second["result"]["tasks"]] == [ids[0]]
    assert second["result"]["nextPageToken"] == ""
    assert second["result"]["tasks"][0]["artifacts"][0]["parts"] == [{"text": "a"}]
    bad = await call(sse_client, gateway_a.url, "ListTasks", {"pageToken": "not-a-token"}, 9)
    assert bad["error"]["code"] == -32602
    assert bad["id"] == 9
    rest = await sse_client.get(
        f"{gateway_a.url}/rest/tasks",
        params={"contextId": context, "status": "TASK_STATE_COMPLETED"},
    )
    assert rest.status_code == 200
    assert [task["id"] for task in rest.json()["tasks"]] == ids[::-1]


async def test_cancel_and_subscribe_rules(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    started = await call(
        sse_client,
        gateway_a.url,
        "SendMessage",
        {
            "message": v1_message("x" * 40, chunks=40, delay=0.1),
            "configuration": {"returnImmediately": True},
        },
    )
    task_id = started["result"]["task"]["id"]
    canceled = await call(sse_client, gateway_a.url, "CancelTask", {"id": task_id}, 2)
    assert_valid_v1(canceled["result"], "Task")
    assert canceled["result"]["status"]["state"] == "TASK_STATE_CANCELED"
    refused = await read_stream(
        sse_client,
        "POST",
        gateway_a.url,
        json=rpc_body("SubscribeToTask", {"id": task_id}, 3),
        headers=V1_HEADERS,
    )
    assert refused.frames[0].data == reason(
        -32004,
        f"Task '{task_id}' is canceled, a terminal state: SubscribeToTask streams only tasks "
        "that have not ended; use GetTask",
        "UNSUPPORTED_OPERATION",
        3,
    )
    follow_up = {**v1_message("more"), "taskId": task_id}
    ended = await call(sse_client, gateway_a.url, "SendMessage", {"message": follow_up}, 5)
    assert ended == reason(
        -32004,
        f"Task '{task_id}' is canceled; a terminal task accepts no messages.",
        "UNSUPPORTED_OPERATION",
        5,
    )
    missing = await call(sse_client, gateway_a.url, "GetTask", {"id": "nope"}, 4)
    assert missing == reason(-32001, "Task not found: 'nope'", "TASK_NOT_FOUND", 4)


async def test_push_config_crud_in_1_0_shapes(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    task = await send(sse_client, gateway_a.url, v1_message("p", finalState="input-required"))
    config = {
        "taskId": task["id"],
        "id": "c1",
        "url": "https://hooks.example.com/a2a",
        "token": "t",
        "authentication": {"scheme": "Bearer", "credentials": "secret"},
    }
    created = await call(sse_client, gateway_a.url, "CreateTaskPushNotificationConfig", config)
    masked = {**config, "authentication": {"scheme": "Bearer", "credentials": "********"}}
    assert created["result"] == masked
    assert_valid_v1(created["result"], "TaskPushNotificationConfig")
    ids = {"taskId": task["id"], "id": "c1"}
    got = await call(sse_client, gateway_a.url, "GetTaskPushNotificationConfig", ids)
    assert got["result"] == masked
    listed = await call(
        sse_client, gateway_a.url, "ListTaskPushNotificationConfigs", {"taskId": task["id"]}
    )
    assert listed["result"] == {"configs": [masked], "nextPageToken": ""}
    assert_valid_v1(listed["result"], "ListTaskPushNotificationConfigsResponse")
    deleted = await call(sse_client, gateway_a.url, "DeleteTaskPushNotificationConfig", ids)
    assert deleted["result"] == {}
    rest = await sse_client.get(f"{gateway_a.url}/rest/tasks/{task['id']}/pushNotificationConfigs")
    assert rest.json() == {"configs": [], "nextPageToken": ""}


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        (
            "GetExtendedAgentCard",
            reason(
                -32004,
                "No authenticated extended card: this gateway authenticates no one "
                "(capabilities.extendedAgentCard is not set)",
                "UNSUPPORTED_OPERATION",
            ),
        ),
        (
            "agent/getAuthenticatedExtendedCard",
            {
                "jsonrpc": "2.0",
                "id": 1,
                "error": {
                    "code": -32007,
                    "message": "No authenticated extended card: this gateway authenticates no one",
                },
            },
        ),
    ],
)
async def test_extended_card_without_auth(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, method: str, expected: Any
) -> None:
    assert await call(sse_client, gateway_a.url, method, {}) == expected


async def test_unsupported_version_is_32009(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    response = await sse_client.post(
        f"{gateway_a.url}/?A2A-Version=0.5", json=rpc_body("GetTask", {"id": "x"})
    )
    assert response.json() == reason(
        -32009,
        "A2A-Version '0.5' is not supported; this gateway serves 0.2, 0.3, 1.0",
        "VERSION_NOT_SUPPORTED",
    )
    rest = await sse_client.get(f"{gateway_a.url}/rest/tasks/x", headers={"A2A-Version": "2.0"})
    assert rest.status_code == 400
    assert rest.json()["error"]["details"][0]["reason"] == "VERSION_NOT_SUPPORTED"


async def test_http_json_binding(gateway_a: GatewayProcess, sse_client: httpx.AsyncClient) -> None:
    base = f"{gateway_a.url}/rest"
    sent = await sse_client.post(f"{base}/message:send", json={"message": v1_message("rest")})
    assert sent.status_code == 200
    assert sent.headers["content-type"] == "application/a2a+json"
    assert_valid_v1(sent.json(), "SendMessageResponse")
    task = sent.json()["task"]
    got = await sse_client.get(f"{base}/tasks/{task['id']}")
    assert got.json() == task
    missing = await sse_client.get(f"{base}/tasks/nope")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "code": 404,
            "status": "NOT_FOUND",
            "message": "Task not found: 'nope'",
            "details": [
                {"@type": ERROR_INFO, "reason": "TASK_NOT_FOUND", "domain": "a2a-protocol.org"}
            ],
        }
    }
    streamed = await read_stream(
        sse_client, "POST", f"{base}/message:stream", json={"message": v1_message("ab", chunks=2)}
    )
    results = [frame.data for frame in streamed.frames if frame.data is not None]
    for result in results:
        assert_valid_v1(result, "StreamResponse")
    assert [next(iter(result)) for result in results] == [
        "task",
        "statusUpdate",
        "artifactUpdate",
        "artifactUpdate",
        "statusUpdate",
    ]
