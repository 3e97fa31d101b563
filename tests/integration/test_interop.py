"""Interop: the official a2a-sdk 0.2.12 client (`A2ACardResolver` + `A2AClient`) drives the gateway.

The client fetches the agent card from `/.well-known/agent.json` and posts JSON-RPC to the card's
`url` (http://testserver/), so these tests also check that the card and every response parse as the
SDK's pydantic models.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from a2a.client import A2ACardResolver, A2AClient
from a2a.types import (
    CancelTaskRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskPushNotificationConfigSuccessResponse,
    GetTaskRequest,
    JSONRPCErrorResponse,
    Message,
    MessageSendConfiguration,
    MessageSendParams,
    Part,
    PushNotificationAuthenticationInfo,
    PushNotificationConfig,
    Role,
    SendMessageRequest,
    SendMessageSuccessResponse,
    SendStreamingMessageRequest,
    SetTaskPushNotificationConfigRequest,
    SetTaskPushNotificationConfigSuccessResponse,
    Task,
    TaskArtifactUpdateEvent,
    TaskIdParams,
    TaskPushNotificationConfig,
    TaskQueryParams,
    TaskState,
    TaskStatusUpdateEvent,
    TextPart,
)

from tests.integration.sse import GatewayProcess

BASE_URL = "http://testserver"


async def sdk_client(http: httpx.AsyncClient) -> A2AClient:
    card = await A2ACardResolver(http, base_url=BASE_URL).get_agent_card()
    assert card.url == f"{BASE_URL}/"
    return A2AClient(httpx_client=http, agent_card=card)


def user_message(text: str, metadata: dict[str, Any] | None = None) -> Message:
    return Message(
        role=Role.user,
        parts=[Part(root=TextPart(text=text))],
        messageId=uuid.uuid4().hex,
        metadata=metadata,
    )


def artifact_text(task: Task) -> str:
    return "".join(
        part.root.text
        for artifact in task.artifacts or []
        for part in artifact.parts
        if isinstance(part.root, TextPart)
    )


async def test_a2a_sdk_client_blocking_send_returns_completed_task(http: httpx.AsyncClient) -> None:
    client = await sdk_client(http)
    request_id = str(uuid.uuid4())
    message = user_message("hello")
    response = await client.send_message(
        SendMessageRequest(
            id=request_id,
            params=MessageSendParams(
                message=message,
                configuration=MessageSendConfiguration(
                    acceptedOutputModes=["text/plain"], blocking=True
                ),
            ),
        )
    )
    assert not isinstance(response.root, JSONRPCErrorResponse), response.root
    assert response.root.id == request_id
    task = response.root.result
    assert isinstance(task, Task)
    assert task.status.state == TaskState.completed
    assert len(task.artifacts or []) == 1
    assert artifact_text(task) == "hello"

    get_id = str(uuid.uuid4())
    got = await client.get_task(
        GetTaskRequest(id=get_id, params=TaskQueryParams(id=task.id, historyLength=1))
    )
    assert not isinstance(got.root, JSONRPCErrorResponse), got.root
    assert got.root.id == get_id
    fetched = got.root.result
    assert isinstance(fetched, Task)
    assert fetched.id == task.id
    assert fetched.contextId == task.contextId
    assert fetched.status.state == TaskState.completed
    assert artifact_text(fetched) == "hello"
    assert fetched.history is not None
    assert len(fetched.history) == 1
    [entry] = fetched.history
    assert entry.role == Role.user
    assert entry.messageId == message.messageId
    assert entry.taskId == task.id
    assert [part.root.text for part in entry.parts if isinstance(part.root, TextPart)] == ["hello"]


async def test_a2a_sdk_client_non_blocking_send_then_cancel_is_canceled_once(
    http: httpx.AsyncClient,
) -> None:
    client = await sdk_client(http)
    # At least 20 characters, so the echo really streams 20 chunks (~3.8 s) and the cancel, which
    # reaches the agent within a heartbeat, always wins the race against the turn completing.
    text = "please cancel this long-running echo"
    assert len(text) >= 20
    response = await client.send_message(
        SendMessageRequest(
            id=str(uuid.uuid4()),
            params=MessageSendParams(
                message=user_message(text, metadata={"echo": {"chunks": 20, "delay": 0.2}}),
                configuration=MessageSendConfiguration(
                    acceptedOutputModes=["text/plain"], blocking=False
                ),
            ),
        )
    )
    assert not isinstance(response.root, JSONRPCErrorResponse), response.root
    task = response.root.result
    assert isinstance(task, Task)
    assert task.status.state in (TaskState.submitted, TaskState.working)

    cancel_id = str(uuid.uuid4())
    canceled = await client.cancel_task(
        CancelTaskRequest(id=cancel_id, params=TaskIdParams(id=task.id))
    )
    assert not isinstance(canceled.root, JSONRPCErrorResponse), canceled.root
    assert canceled.root.id == cancel_id
    assert isinstance(canceled.root.result, Task)
    assert canceled.root.result.id == task.id
    assert canceled.root.result.status.state == TaskState.canceled

    again_id = str(uuid.uuid4())
    again = await client.cancel_task(
        CancelTaskRequest(id=again_id, params=TaskIdParams(id=task.id))
    )
    assert isinstance(again.root, JSONRPCErrorResponse), again.root
    assert again.root.id == again_id
    assert again.root.error.code == -32002


async def test_a2a_sdk_client_get_unknown_task_returns_task_not_found(
    http: httpx.AsyncClient,
) -> None:
    client = await sdk_client(http)
    request_id = str(uuid.uuid4())
    unknown = str(uuid.uuid4())
    response = await client.get_task(
        GetTaskRequest(id=request_id, params=TaskQueryParams(id=unknown))
    )
    assert isinstance(response.root, JSONRPCErrorResponse), response.root
    assert response.root.id == request_id
    assert response.root.error.code == -32001
    assert unknown in (response.root.error.message or "")


async def test_a2a_sdk_client_sets_and_gets_push_config(http: httpx.AsyncClient) -> None:
    """The client registers an unreachable example webhook (set must not call it) and reads it back,
    credentials masked."""
    client = await sdk_client(http)
    sent = await client.send_message(
        SendMessageRequest(
            id=str(uuid.uuid4()),
            params=MessageSendParams(
                message=user_message("push", {"echo": {"finalState": "input-required"}})
            ),
        )
    )
    assert isinstance(sent.root, SendMessageSuccessResponse), sent.root
    task = sent.root.result
    assert isinstance(task, Task)
    config = PushNotificationConfig(
        url="https://example.com/webhook",
        token="tok",
        authentication=PushNotificationAuthenticationInfo(schemes=["Bearer"], credentials="secret"),
    )
    stored = await client.set_task_callback(
        SetTaskPushNotificationConfigRequest(
            id="s1",
            params=TaskPushNotificationConfig(taskId=task.id, pushNotificationConfig=config),
        )
    )
    assert isinstance(stored.root, SetTaskPushNotificationConfigSuccessResponse), stored.root
    config_id = stored.root.result.pushNotificationConfig.id
    assert config_id is not None
    masked = config.model_copy(
        update={
            "id": config_id,
            "authentication": PushNotificationAuthenticationInfo(
                schemes=["Bearer"], credentials="********"
            ),
        }
    )
    assert stored.root.result == TaskPushNotificationConfig(
        taskId=task.id, pushNotificationConfig=masked
    )
    fetched = await client.get_task_callback(
        GetTaskPushNotificationConfigRequest(id="g1", params=TaskIdParams(id=task.id))
    )
    assert isinstance(fetched.root, GetTaskPushNotificationConfigSuccessResponse), fetched.root
    assert fetched.root.result == stored.root.result
    delete = {
        "jsonrpc": "2.0",
        "id": "d1",
        "method": "tasks/pushNotificationConfig/delete",
        "params": {"id": task.id, "pushNotificationConfigId": config_id},
    }
    deleted = await http.post("/", json=delete)
    assert deleted.json() == {"jsonrpc": "2.0", "id": "d1", "result": None}
    await client.cancel_task(CancelTaskRequest(id="c1", params=TaskIdParams(id=task.id)))


async def test_a2a_sdk_client_reads_our_stream_to_the_end(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    """`send_message_streaming` against a real gateway process: Task, working, the chunks, and the
    final status update, each parsed by the SDK's own models."""
    card = await A2ACardResolver(sse_client, base_url=gateway_a.url).get_agent_card()
    assert card.capabilities.streaming is True
    client = A2AClient(httpx_client=sse_client, agent_card=card)
    message = user_message("streamed by the sdk", metadata={"echo": {"chunks": 3}})
    events = [
        response.root
        async for response in client.send_message_streaming(
            SendStreamingMessageRequest(id="sdk-1", params=MessageSendParams(message=message))
        )
    ]
    results = []
    for event in events:
        assert not isinstance(event, JSONRPCErrorResponse), event
        assert event.id == "sdk-1"
        results.append(event.result)
    assert [type(result).__name__ for result in results] == [
        "Task",
        "TaskStatusUpdateEvent",
        "TaskArtifactUpdateEvent",
        "TaskArtifactUpdateEvent",
        "TaskArtifactUpdateEvent",
        "TaskStatusUpdateEvent",
    ]
    final = results[-1]
    assert isinstance(final, TaskStatusUpdateEvent)
    assert (final.final, final.status.state) == (True, TaskState.completed)
    text = "".join(
        part.root.text
        for result in results
        if isinstance(result, TaskArtifactUpdateEvent)
        for part in result.artifact.parts
        if isinstance(part.root, TextPart)
    )
    assert text == "streamed by the sdk"
