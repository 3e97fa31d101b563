"""A2A 1.0's methods (spec §9.4) of one agent: each reads its 1.0 request into the internal model,
calls the agent's method (`AgentMethods`), and writes the result back in 1.0 shapes. Shared by the
JSON-RPC binding (PascalCase methods) and the HTTP+JSON binding."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from starlette.types import ASGIApp

from gateway.access.tenancy import Tenancy
from gateway.rpc.dispatch import Call, Handler, StreamHandler
from gateway.rpc.methods import AgentMethods
from gateway.streaming.renderers import V1Renderer
from gateway.tasks.listing import ListQuery, TaskIndex
from protocol import (
    TERMINAL_STATES,
    DeleteTaskPushNotificationConfigParams,
    GetTaskPushNotificationConfigParams,
    InvalidParamsError,
    ListTaskPushNotificationConfigParams,
    MessageSendConfiguration,
    MessageSendParams,
    PushNotificationConfig,
    TaskEndedError,
    TaskIdParams,
    TaskPushNotificationConfig,
    TaskQueryParams,
    UnsupportedOperationError,
)
from protocol.v1 import (
    STATES_FROM_V1,
    V1,
    CancelTaskRequest,
    GetExtendedAgentCardRequest,
    GetTaskRequest,
    ListTaskPushConfigsRequest,
    ListTasksRequest,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskPushConfigRequest,
    V1PushConfig,
    push_config_to_v1,
    task_to_v1,
)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


class V1Methods:
    """The 1.0 methods of one agent. `extended_card()`: its authenticated extended card in 1.0 form,
    or None when the gateway has none (auth off)."""

    def __init__(
        self,
        core: AgentMethods,
        *,
        index: TaskIndex,
        tenancy: Tenancy,
        extended_card: Callable[[], dict[str, Any] | None],
        envelope: bool = True,
    ) -> None:
        self._core = core
        self._index = index
        self._tenancy = tenancy
        self._extended_card = extended_card
        # Streams wrap each event in a JSON-RPC response (the JSON-RPC binding) or not (HTTP+JSON).
        self._view = partial(V1Renderer, envelope=envelope)

    def table(self) -> dict[str, Handler]:
        return {
            "SendMessage": self.send_message,
            "GetTask": self.get_task,
            "ListTasks": self.list_tasks,
            "CancelTask": self.cancel_task,
            "CreateTaskPushNotificationConfig": self.create_push_config,
            "GetTaskPushNotificationConfig": self.get_push_config,
            "ListTaskPushNotificationConfigs": self.list_push_configs,
            "DeleteTaskPushNotificationConfig": self.delete_push_config,
            "GetExtendedAgentCard": self.get_extended_card,
        }

    def stream_table(self) -> dict[str, StreamHandler]:
        return {
            "SendStreamingMessage": self.send_streaming_message,
            "SubscribeToTask": self.subscribe,
        }

    def _call(self, call: Call) -> Call:
        return dataclasses.replace(call, version=V1, view=self._view)

    async def send_message(self, params: SendMessageRequest, call: Call) -> dict[str, Any]:
        try:
            task = await self._core.on_message_send(_send_params(params), self._call(call))
        except TaskEndedError as err:
            raise UnsupportedOperationError(err.message) from err
        return {"task": task_to_v1(task)}

    async def send_streaming_message(self, params: SendMessageRequest, call: Call) -> ASGIApp:
        try:
            stream: ASGIApp = await self._core.on_message_stream(
                _send_params(params), self._call(call)
            )
        except TaskEndedError as err:
            raise UnsupportedOperationError(err.message) from err
        return stream

    async def get_task(self, params: GetTaskRequest, call: Call) -> dict[str, Any]:
        query = TaskQueryParams(id=params.id, historyLength=params.historyLength)
        return task_to_v1(await self._core.on_tasks_get(query, call))

    async def cancel_task(self, params: CancelTaskRequest, call: Call) -> dict[str, Any]:
        task = await self._core.on_tasks_cancel(
            TaskIdParams(id=params.id, metadata=params.metadata), call
        )
        return task_to_v1(task)

    async def subscribe(self, params: SubscribeToTaskRequest, call: Call) -> ASGIApp:
        """The task, then its events until the turn ends. A task that has ended: -32004 (1.0 §3.1.6)."""
        task = await self._core.find(params.id, call)
        if task.status.state in TERMINAL_STATES:
            raise UnsupportedOperationError(
                f"Task '{params.id}' is {task.status.state.value}, a terminal state: "
                "SubscribeToTask streams only tasks that have not ended; use GetTask"
            )
        stream: ASGIApp = await self._core.on_tasks_resubscribe(
            TaskIdParams(id=params.id), self._call(call)
        )
        return stream

    async def list_tasks(self, params: ListTasksRequest, call: Call) -> dict[str, Any]:
        query = _list_query(params)
        page = await self._index.list(self._tenancy.scope(call.principal), query)
        return {
            "tasks": [
                task_to_v1(
                    task,
                    history_length=params.historyLength,
                    artifacts=bool(params.includeArtifacts),
                )
                for task in page.tasks
            ],
            "nextPageToken": page.next_page_token,
            "pageSize": query.page_size,
            "totalSize": page.total_size,
        }

    async def create_push_config(self, params: V1PushConfig, call: Call) -> dict[str, Any]:
        if not params.taskId:
            raise InvalidParamsError(
                "Invalid parameters for CreateTaskPushNotificationConfig: taskId is required",
                data=[{"field": "taskId", "message": "Field required"}],
            )
        wire = await self._core.on_push_config_set(
            TaskPushNotificationConfig(
                taskId=params.taskId, pushNotificationConfig=params.internal()
            ),
            self._call(call),
        )
        return _push_config(wire)

    async def get_push_config(self, params: TaskPushConfigRequest, call: Call) -> dict[str, Any]:
        wire = await self._core.on_push_config_get(
            GetTaskPushNotificationConfigParams(
                id=params.taskId, pushNotificationConfigId=params.id
            ),
            call,
        )
        return _push_config(wire)

    async def list_push_configs(
        self, params: ListTaskPushConfigsRequest, call: Call
    ) -> dict[str, Any]:
        configs = await self._core.on_push_config_list(
            ListTaskPushNotificationConfigParams(id=params.taskId), call
        )
        return {"configs": [_push_config(wire) for wire in configs], "nextPageToken": ""}

    async def delete_push_config(self, params: TaskPushConfigRequest, call: Call) -> dict[str, Any]:
        await self._core.on_push_config_delete(
            DeleteTaskPushNotificationConfigParams(
                id=params.taskId, pushNotificationConfigId=params.id
            ),
            call,
        )
        return {}

    async def get_extended_card(
        self, params: GetExtendedAgentCardRequest, call: Call
    ) -> dict[str, Any]:
        card = self._extended_card()
        if card is None:
            raise UnsupportedOperationError(
                "No authenticated extended card: this gateway authenticates no one "
                "(capabilities.extendedAgentCard is not set)"
            )
        return card


def _send_params(params: SendMessageRequest) -> MessageSendParams:
    config = params.configuration
    push: PushNotificationConfig | None = None
    if config is not None and config.taskPushNotificationConfig is not None:
        push = config.taskPushNotificationConfig.internal()
    return MessageSendParams(
        message=params.message.internal(),
        configuration=None
        if config is None
        else MessageSendConfiguration(
            acceptedOutputModes=config.acceptedOutputModes,
            historyLength=config.historyLength,
            pushNotificationConfig=push,
            blocking=not config.returnImmediately,
        ),
        metadata=params.metadata,
    )


def _push_config(wire: dict[str, Any]) -> dict[str, Any]:
    config = PushNotificationConfig.model_validate(wire["pushNotificationConfig"])
    return push_config_to_v1(wire["taskId"], config)


def _list_query(params: ListTasksRequest) -> ListQuery:
    """The listing's filters, checked: every bad one is named in one -32602."""
    problems: list[dict[str, str]] = []
    page_size = DEFAULT_PAGE_SIZE if not params.pageSize else params.pageSize
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        problems.append(
            {"field": "pageSize", "message": f"must be 1 to {MAX_PAGE_SIZE}, got {page_size}"}
        )
    if params.historyLength is not None and params.historyLength < 0:
        problems.append({"field": "historyLength", "message": "must not be negative"})
    state: str | None = None
    if params.status and params.status != "TASK_STATE_UNSPECIFIED":
        internal = STATES_FROM_V1.get(params.status)
        if internal is None:
            problems.append(
                {
                    "field": "status",
                    "message": f"unknown state {params.status!r}; one of "
                    + ", ".join(STATES_FROM_V1),
                }
            )
        else:
            state = internal.value
    after_ms = _timestamp_ms(params.statusTimestampAfter, problems)
    if problems:
        raise InvalidParamsError("Invalid parameters for ListTasks", data=problems)
    return ListQuery(
        context_id=params.contextId or None,
        state=state,
        status_after_ms=after_ms,
        page_size=page_size,
        page_token=params.pageToken or None,
    )


def _timestamp_ms(value: str | None, problems: list[dict[str, str]]) -> int | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        problems.append(
            {
                "field": "statusTimestampAfter",
                "message": f"not an ISO 8601 UTC timestamp: {value!r}",
            }
        )
        return None
    return int(moment.timestamp() * 1000)
