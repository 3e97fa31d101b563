"""One handler per A2A method of one agent. Handlers raise `A2AError`s; `gateway.rpc.dispatch` turns
them into responses."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from gateway.access.tenancy import Tenancy
from gateway.cards import unsupported_part
from gateway.rpc.checks import check_history_length, check_send
from gateway.rpc.dispatch import Call, Handler, StreamHandler
from gateway.streaming.log import EventLog, LogEntry, parse_last_event_id
from gateway.streaming.renderers import ACCEPTED, A2ARenderer, Renderer
from gateway.streaming.sse import ErrorStream
from gateway.streaming.streams import Streams
from gateway.tasks.push_configs import PushConfigs
from gateway.tasks.starts import Route
from gateway.tasks.store import TaskStore
from gateway.tasks.temporal import TemporalTasks
from protocol import (
    A2AError,
    ContentTypeNotSupportedError,
    DeleteTaskPushNotificationConfigParams,
    ExtendedCardNotConfiguredError,
    GetTaskPushNotificationConfigParams,
    InvalidParamsError,
    ListTaskPushNotificationConfigParams,
    Message,
    MessageSendConfiguration,
    MessageSendParams,
    PushNotificationConfig,
    StoredPushConfig,
    Task,
    TaskEndedError,
    TaskIdParams,
    TaskNotFoundError,
    TaskPushNotificationConfig,
    TaskQueryParams,
    with_history_length,
)


class AgentMethods:
    """The A2A methods of one agent: its new tasks go to its task queue (`route`)."""

    def __init__(
        self,
        route: Route,
        kind: str,
        *,
        tasks: TemporalTasks,
        store: TaskStore,
        log: EventLog,
        push: PushConfigs,
        streams: Streams,
        tenancy: Tenancy,
    ) -> None:
        self._route = route
        self._kind = kind
        self._tasks = tasks
        self._store = store
        self._log = log
        self._push = push
        self._streams = streams
        self._tenancy = tenancy

    def table(self) -> dict[str, Handler]:
        """Method name -> handler, for every A2A method that does not stream."""
        return {
            "message/send": self.on_message_send,
            "tasks/get": self.on_tasks_get,
            "tasks/cancel": self.on_tasks_cancel,
            "tasks/pushNotificationConfig/set": self.on_push_config_set,
            "tasks/pushNotificationConfig/get": self.on_push_config_get,
            "tasks/pushNotificationConfig/list": self.on_push_config_list,
            "tasks/pushNotificationConfig/delete": self.on_push_config_delete,
        }

    def v03_table(self, extended_card: Callable[[], dict[str, Any] | None]) -> dict[str, Handler]:
        """What A2A 0.3 adds to 0.2.5's JSON-RPC methods. `extended_card()`: the agent's extended
        card as 0.3 reads it, None when there is none (auth off)."""

        async def on_extended_card(params: Any, call: Call) -> dict[str, Any]:
            card = extended_card()
            if card is None:
                raise ExtendedCardNotConfiguredError(
                    "No authenticated extended card: this gateway authenticates no one"
                )
            return card

        return {"agent/getAuthenticatedExtendedCard": on_extended_card}

    def stream_table(self) -> dict[str, StreamHandler]:
        return {
            "message/stream": self.on_message_stream,
            "tasks/resubscribe": self.on_tasks_resubscribe,
        }

    async def on_message_send(self, params: MessageSendParams, call: Call) -> dict[str, Any]:
        """Exactly once: a message id the caller sent before gets the task that message went to,
        and the message is delivered once."""
        config = await self._check_send(params)
        blocking = config.blocking is not False
        message = params.message
        push = config.pushNotificationConfig
        if message.taskId:
            await self._tenancy.authorize(message.taskId, call.principal)
        task_id, repeated = await self._task_for(message, call)
        if repeated and await self._store.delivered(task_id, message.messageId):
            # Answered from Redis, with no update parked in the workflow for each retry.
            turn = self._tasks.turn_end if blocking else self._tasks.current_task
            task = await turn(task_id)
            return with_history_length(task, config.historyLength).to_wire()
        async with self._delivering(message, task_id, call, not repeated):
            if message.taskId:
                task = await self._follow_up(task_id, message, blocking, call, push, repeated)
            else:
                again = repeated and await self._started(task_id, call)
                task = await self._start(task_id, message, blocking, call, push, repeated=again)
        return with_history_length(task, config.historyLength).to_wire()

    async def _started(self, task_id: str, call: Call) -> bool:
        """Whether the new task a repeated message claimed was started: False when the first attempt
        failed before it started the workflow (the repeat is then the first send, under the same id,
        which the claim keeps to this caller)."""
        try:
            await self._tenancy.authorize(task_id, call.principal)
            if not self._tenancy.enabled:
                await self._tasks.owner(task_id)
        except TaskNotFoundError:
            return False
        return True

    async def _follow_up(
        self,
        task_id: str,
        message: Message,
        blocking: bool,
        call: Call,
        push: PushNotificationConfig | None,
        repeated: bool,
    ) -> Task:
        try:
            if not repeated:
                await self._register_push(task_id, push, call.version)
            return await self._tasks.send(task_id, message, blocking=blocking)
        except TaskEndedError:
            # Delivered all the same when a repeat of this send reached the workflow first (or
            # Redis forgot this message's claim): the task it went to.
            delivered = await self._delivered(task_id, message.messageId)
            if delivered is None:
                raise
            return delivered

    @contextlib.asynccontextmanager
    async def _delivering(
        self, message: Message, task_id: str, call: Call, claimed: bool
    ) -> AsyncIterator[None]:
        """Delivering `message`: refused with an A2A error, it was not delivered, and its id is free
        again for a retry when this request `claimed` it. A repeat's claim is its first send's, even
        when the repeat is the one to start the task: the first may still be starting it."""
        try:
            yield
        except A2AError:
            if claimed:
                scope = self._tenancy.scope(call.principal)
                await self._store.release_message(message, task_id, scope)
            raise

    async def _task_for(self, message: Message, call: Call) -> tuple[str, bool]:
        """The task `message` goes to (its `taskId`, else a new one), and whether the caller sent it
        before: a repeat goes where the first went."""
        target = message.taskId or str(uuid.uuid4())
        scope = self._tenancy.scope(call.principal)
        previous = await self._store.claim_message(message, target, scope)
        if previous is None:
            return target, False
        other_task = bool(message.taskId) and previous.task_id != message.taskId
        if other_task or not previous.same_content:
            elsewhere = "to another task" if other_task else "with other content"
            raise InvalidParamsError(
                f"messageId '{message.messageId}' was already sent {elsewhere}; "
                "every message needs an id of its own"
            )
        return previous.task_id, True

    async def on_message_stream(self, params: MessageSendParams, call: Call) -> Any:
        """Deliver the message and stream the task's events until the turn ends (PROTOCOL.md §7).

        A retried request with `Last-Event-ID` resumes the stream it started after that event, and
        delivers its message only if the first attempt did not.
        """
        config = await self._check_send(params)
        position = parse_last_event_id(call.last_event_id)
        scope = self._tenancy.scope(call.principal)
        lease = self._streams.lease(scope)
        renderer = (call.view or A2ARenderer)(call.request_id, config.historyLength)
        message = params.message
        push = config.pushNotificationConfig
        try:
            if message.taskId:
                await self._tenancy.authorize(message.taskId, call.principal)
            task_id, repeated = await self._task_for(message, call)
            if message.taskId:
                return await self._stream_follow_up(
                    task_id, message, call, position, renderer, push, lease, repeated
                )
            again = repeated and await self._started(task_id, call)
            if again and position is not None:
                return await self._streams.open(lease, task_id, position, renderer)
            # A repeat starts nothing new: the workflow is there, and takes the message once.
            async with self._delivering(message, task_id, call, not repeated):
                await self._start(task_id, message, False, call, push, repeated=again)
            return await self._streams.open(lease, task_id, "0", renderer, new_turn=True)
        except BaseException:
            lease.release()
            raise

    async def _stream_follow_up(
        self,
        task_id: str,
        message: Message,
        call: Call,
        position: str | None,
        renderer: Renderer,
        push: PushNotificationConfig | None,
        lease: Any,
        repeated: bool,
    ) -> Any:
        if repeated and await self._delivered(task_id, message.messageId) is not None:
            # A retry: after `Last-Event-ID` when it names one, else the task and its live events.
            return await self._streams.open(lease, task_id, position, renderer)
        async with self._delivering(message, task_id, call, not repeated):
            try:
                if not repeated:
                    await self._register_push(task_id, push, call.version)
                after = await self._log.last_event_id(task_id) or "0"
                task = await self._tasks.send(task_id, message, blocking=False)
            except TaskEndedError:
                if await self._delivered(task_id, message.messageId) is None:
                    raise
                return await self._streams.open(lease, task_id, position, renderer)
        accepted = LogEntry(after, {"type": ACCEPTED, "taskId": task_id, "task": task.to_wire()})
        return await self._streams.open(
            lease, task_id, after, renderer, lead=[accepted], new_turn=True
        )

    async def on_tasks_resubscribe(self, params: TaskIdParams, call: Call) -> Any:
        """The task's snapshot, then its events until the turn ends; after `Last-Event-ID`, the events
        after that one. An unknown task: one event carrying -32001 (PROTOCOL.md §7 item 4b)."""
        position = parse_last_event_id(call.last_event_id)
        lease = self._streams.lease(self._tenancy.scope(call.principal))
        try:
            await self._tenancy.authorize(params.id, call.principal)
            return await self._streams.open(
                lease, params.id, position, (call.view or A2ARenderer)(call.request_id, None)
            )
        except TaskNotFoundError as err:
            lease.release()
            return ErrorStream(call.request_id, err)
        except BaseException:
            lease.release()
            raise

    async def on_tasks_get(self, params: TaskQueryParams, call: Call) -> dict[str, Any]:
        check_history_length(params.historyLength, "historyLength")
        await self._tenancy.authorize(params.id, call.principal)
        if params.historyLength is None:
            # The snapshot is the Task's wire form already (the worker wrote `to_wire()`): served as
            # it is, without a round trip through the model.
            wire = await self._store.get_wire(params.id)
            if wire is not None:
                return wire
        task = await self._tasks.current_task(params.id)
        return with_history_length(task, params.historyLength).to_wire()

    async def on_tasks_cancel(self, params: TaskIdParams, call: Call) -> dict[str, Any]:
        await self._tenancy.authorize(params.id, call.principal)
        return (await self._tasks.cancel(params.id)).to_wire()

    async def on_push_config_set(
        self, params: TaskPushNotificationConfig, call: Call
    ) -> dict[str, Any]:
        await self.find(params.taskId, call)
        await self._push.check(params.pushNotificationConfig, "pushNotificationConfig")
        stored = await self._push.save(params.taskId, params.pushNotificationConfig, call.version)
        await self._announce(params.taskId, stored)
        return _task_push_config(params.taskId, stored)

    async def on_push_config_get(
        self, params: GetTaskPushNotificationConfigParams, call: Call
    ) -> dict[str, Any]:
        """The config named by `pushNotificationConfigId`; without one, the task's first config."""
        await self.find(params.id, call)
        if params.pushNotificationConfigId is not None:
            stored = await self._push.get(params.id, params.pushNotificationConfigId)
            if stored is None:
                raise InvalidParamsError(
                    f"Task '{params.id}' has no push notification config "
                    f"'{params.pushNotificationConfigId}'"
                )
            return _task_push_config(params.id, stored)
        configs = await self._push.configs(params.id)
        if not configs:
            raise InvalidParamsError(f"Task '{params.id}' has no push notification config")
        return _task_push_config(params.id, configs[0])

    async def on_push_config_list(
        self, params: ListTaskPushNotificationConfigParams, call: Call
    ) -> list[dict[str, Any]]:
        await self.find(params.id, call)
        return [
            _task_push_config(params.id, stored) for stored in await self._push.configs(params.id)
        ]

    async def on_push_config_delete(
        self, params: DeleteTaskPushNotificationConfigParams, call: Call
    ) -> None:
        """Idempotent: deleting a config the task does not have succeeds."""
        await self.find(params.id, call)
        await self._push.delete(params.id, params.pushNotificationConfigId)
        await self._tasks.push_removed(params.id, params.pushNotificationConfigId)

    async def _start(
        self,
        task_id: str,
        message: Message,
        blocking: bool,
        call: Call,
        push: PushNotificationConfig | None,
        *,
        repeated: bool = False,
    ) -> Task:
        """Start the task (`repeated`: again, for a repeated message; a config that came with it was
        stored the first time)."""
        owner = self._tenancy.scope(call.principal)
        if owner is not None and not repeated:
            await self._store.set_owner(task_id, owner)
        push_configs = []
        if push is not None and not repeated:
            stored = await self._push.save(task_id, push, call.version)
            push_configs.append(stored.config.id or "")
        return await self._tasks.start(
            self._route,
            task_id,
            message.contextId or str(uuid.uuid4()),
            message,
            blocking=blocking,
            owner=owner,
            push_configs=push_configs,
            repeated=repeated,
        )

    async def find(self, task_id: str, call: Call) -> Task:
        """The task, if the caller may see it (else -32001)."""
        await self._tenancy.authorize(task_id, call.principal)
        return await self._tasks.current_task(task_id)

    async def _register_push(
        self, task_id: str, config: PushNotificationConfig | None, version: str
    ) -> None:
        """Store a config that came with a follow-up message and announce it to the task, unless the
        message is bound to be refused (the task has ended)."""
        if config is None:
            return
        await self._tasks.accepting_messages(task_id)
        await self._announce(task_id, await self._push.save(task_id, config, version))

    async def _announce(self, task_id: str, stored: StoredPushConfig) -> None:
        await self._tasks.push_configured(task_id, stored.config.id or "", self._route.task_queue)

    async def _check_send(self, params: MessageSendParams) -> MessageSendConfiguration:
        config = check_send(params)
        reason = unsupported_part(self._kind, params.message)
        if reason is not None:
            raise ContentTypeNotSupportedError(f"Incompatible content types: {reason}")
        if config.pushNotificationConfig is not None:
            await self._push.check(
                config.pushNotificationConfig, "configuration.pushNotificationConfig"
            )
        return config

    async def _delivered(self, task_id: str, message_id: str) -> Task | None:
        """The task, if the message is in its history (None: not delivered)."""
        task = await self._tasks.current_task(task_id)
        return task if any(m.messageId == message_id for m in task.history or []) else None


def _task_push_config(task_id: str, stored: StoredPushConfig) -> dict[str, Any]:
    return TaskPushNotificationConfig(
        taskId=task_id, pushNotificationConfig=stored.masked()
    ).to_wire()
