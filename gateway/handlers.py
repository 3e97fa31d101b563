"""One handler per A2A method. Handlers raise `A2AError`s; `gateway.jsonrpc` turns them into responses."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, NoReturn

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateStage,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from gateway.auth import Principal
from gateway.card import OUTPUT_MODES, accepts_output, unsupported_part
from gateway.hub import LogEntry
from gateway.jsonrpc import Call, Handler, StreamHandler
from gateway.push import PushRegistry
from gateway.settings import GatewaySettings
from gateway.store import TaskStore
from gateway.streams import ACCEPTED, A2ARenderer, ErrorStream, Streams, parse_last_event_id
from protocol import (
    INTERRUPTED_STATES,
    TERMINAL_STATES,
    ContentTypeNotSupportedError,
    DeleteTaskPushNotificationConfigParams,
    GetTaskPushNotificationConfigParams,
    InvalidParamsError,
    ListTaskPushNotificationConfigParams,
    Message,
    MessageSendConfiguration,
    MessageSendParams,
    PushNotificationConfig,
    StoredPushConfig,
    Task,
    TaskIdParams,
    TaskNotCancelableError,
    TaskNotFoundError,
    TaskPushNotificationConfig,
    TaskQueryParams,
    TextPart,
    with_history_length,
)
from workflows import (
    AGENT_ATTRIBUTE,
    CONTEXT_ID_ATTRIBUTE,
    CONTEXT_MISMATCH,
    NOT_ACCEPTING_MESSAGES,
    NOT_CANCELABLE,
    STATE_ATTRIBUTE,
    TASK_BUSY,
    CancelTaskInput,
    SendMessageInput,
    TaskWorkflow,
    TaskWorkflowInput,
    task_queue_for,
    workflow_id_for,
)

logger = logging.getLogger(__name__)

# Temporal documents a workflow's static summary as one line of at most 200 bytes.
SUMMARY_MAX_BYTES = 200
# A blocking send waits this long on the task's Redis log before it also polls Temporal for the
# update's outcome (the log answers first unless Redis is failing).
UPDATE_POLL_AFTER_SECONDS = 2.0
ELLIPSIS = "…"


def task_not_found(task_id: str) -> TaskNotFoundError:
    return TaskNotFoundError(f"Task not found: '{task_id}'")


class Handlers:
    """The A2A methods of one agent: its tasks run on its task queue.

    `tenancy`: callers are authenticated, and a task answers only to the principal that created it
    (anyone else gets -32001, as for a task that does not exist).
    """

    def __init__(
        self,
        settings: GatewaySettings,
        temporal: Client,
        store: TaskStore,
        push: PushRegistry,
        *,
        agent: str,
        kind: str = "echo",
        task_queue: str | None = None,
        tenancy: bool = False,
    ) -> None:
        self._settings = settings
        self._kind = kind
        self._temporal = temporal
        self._store = store
        self._push = push
        self._agent = agent
        self._task_queue = task_queue or task_queue_for(agent)
        self._tenancy = tenancy
        self.streams: Streams | None = None

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

    def stream_table(self) -> dict[str, StreamHandler]:
        return {
            "message/stream": self.on_message_stream,
            "tasks/resubscribe": self.on_tasks_resubscribe,
        }

    def _streams(self) -> Streams:
        if self.streams is None:
            raise RuntimeError("Handlers.streams is not set")
        return self.streams

    async def on_message_send(self, params: MessageSendParams, call: Call) -> dict[str, Any]:
        config = await self._check_send(params)
        blocking = config.blocking is not False
        principal = call.principal
        push = config.pushNotificationConfig
        if params.message.taskId:
            task_id = params.message.taskId
            await self.authorize(task_id, principal)
            await self._register_push(task_id, push)
            task = await self._continue_task(task_id, params.message, blocking)
        else:
            task_id = str(uuid.uuid4())
            task = await self._start_task(task_id, params.message, blocking, principal, push)
        return with_history_length(task, config.historyLength).to_wire()

    async def on_message_stream(self, params: MessageSendParams, call: Call) -> Any:
        """Deliver the message and stream the task's events until the turn ends (PROTOCOL.md §7).

        A retried request with `Last-Event-ID` resumes the stream it started after that event, and
        delivers its message only if the first attempt did not.
        """
        config = await self._check_send(params)
        position = parse_last_event_id(call.last_event_id)
        streams = self._streams()
        principal = call.principal
        scope = self.scope(principal)
        lease = streams.lease(scope)
        renderer = A2ARenderer(call.request_id, config.historyLength)
        message = params.message
        push = config.pushNotificationConfig
        try:
            if message.taskId:
                task_id = message.taskId
                await self.authorize(task_id, principal)
                if position is not None and await self._delivered(task_id, message.messageId):
                    return await streams.open(lease, task_id, position, renderer)
                await self._register_push(task_id, push)
                after = await self._store.last_event_id(task_id) or "0"
                task = await self._continue_task(task_id, message, blocking=False)
                accepted = LogEntry(
                    after, {"type": ACCEPTED, "taskId": task_id, "task": task.to_wire()}
                )
                return await streams.open(
                    lease, task_id, after, renderer, lead=[accepted], new_turn=True
                )
            if position is not None:
                started = await self._store.stream_message_task(message.messageId, scope)
                if started is not None:
                    await self.authorize(started, principal)
                    return await streams.open(lease, started, position, renderer)
            task_id = str(uuid.uuid4())
            await self._store.remember_stream_message(message.messageId, task_id, scope)
            await self._start_task(task_id, message, False, principal, push)
            return await streams.open(lease, task_id, "0", renderer, new_turn=True)
        except BaseException:
            lease.release()
            raise

    async def on_tasks_resubscribe(self, params: TaskIdParams, call: Call) -> Any:
        """The task's snapshot, then its events until the turn ends; after `Last-Event-ID`, the events
        after that one. An unknown task: one event carrying -32001 (PROTOCOL.md §7 item 4b)."""
        position = parse_last_event_id(call.last_event_id)
        streams = self._streams()
        lease = streams.lease(self.scope(call.principal))
        try:
            await self.authorize(params.id, call.principal)
            return await streams.open(lease, params.id, position, A2ARenderer(call.request_id))
        except TaskNotFoundError as err:
            lease.release()
            return ErrorStream(call.request_id, err)
        except BaseException:
            lease.release()
            raise

    async def on_push_config_set(
        self, params: TaskPushNotificationConfig, call: Call
    ) -> dict[str, Any]:
        await self._find(params.taskId, call.principal)
        await self._push.check(params.pushNotificationConfig, "pushNotificationConfig")
        stored = await self._push.save(params.taskId, params.pushNotificationConfig)
        await self._announce(params.taskId, stored)
        return _task_push_config(params.taskId, stored)

    async def on_push_config_get(
        self, params: GetTaskPushNotificationConfigParams, call: Call
    ) -> dict[str, Any]:
        """The config named by `pushNotificationConfigId`; without one, the task's first config."""
        await self._find(params.id, call.principal)
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
        await self._find(params.id, call.principal)
        return [
            _task_push_config(params.id, stored) for stored in await self._push.configs(params.id)
        ]

    async def on_push_config_delete(
        self, params: DeleteTaskPushNotificationConfigParams, call: Call
    ) -> None:
        """Idempotent: deleting a config the task does not have succeeds."""
        await self._find(params.id, call.principal)
        await self._push.delete(params.id, params.pushNotificationConfigId)

    def scope(self, principal: Principal) -> str | None:
        """What the caller's tasks, stream leases and message ids are kept under: its principal, with
        tenancy; nothing without."""
        return principal.id if self._tenancy else None

    async def authorize(self, task_id: str, principal: Principal) -> None:
        """-32001 unless `principal` created the task (with tenancy; without, anyone may see any task).
        Redis remembers the owner; the workflow answers when Redis has forgotten."""
        if not self._tenancy:
            return
        owner = await self._store.owner(task_id)
        if owner is None:
            handle = self._temporal.get_workflow_handle(workflow_id_for(task_id))
            try:
                async with asyncio.timeout(self._settings.call_timeout_seconds):
                    owner = await handle.query(TaskWorkflow.owner)
            except RPCError as err:
                if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                    raise task_not_found(task_id) from err
                raise
            except WorkflowQueryFailedError as err:
                raise task_not_found(task_id) from err
            if owner is not None:
                await self._store.set_owner(task_id, owner)
        if owner != principal.id:
            raise task_not_found(task_id)

    async def _find(self, task_id: str, principal: Principal) -> Task:
        await self.authorize(task_id, principal)
        return await self.current_task(task_id)

    async def _register_push(self, task_id: str, config: PushNotificationConfig | None) -> None:
        """Store a config that came with a follow-up message and announce it to the task, unless the
        message is bound to be refused (the task has ended)."""
        if config is None:
            return
        seen = await self._store.get(task_id)
        if seen is not None and seen.status.state in TERMINAL_STATES:
            raise InvalidParamsError(
                f"Task '{task_id}' is {seen.status.state.value}; a terminal task accepts no messages."
            )
        await self._announce(task_id, await self._push.save(task_id, config))

    async def _announce(self, task_id: str, stored: StoredPushConfig) -> None:
        config_id = stored.config.id or ""
        await self._push.announce(
            task_id, config_id, self._task_queue, lambda: self.current_task(task_id)
        )

    async def _check_send(self, params: MessageSendParams) -> MessageSendConfiguration:
        config = _check_send(params)
        reason = unsupported_part(self._kind, params.message)
        if reason is not None:
            raise ContentTypeNotSupportedError(f"Incompatible content types: {reason}")
        if config.pushNotificationConfig is not None:
            await self._push.check(
                config.pushNotificationConfig, "configuration.pushNotificationConfig"
            )
        return config

    async def _delivered(self, task_id: str, message_id: str) -> bool:
        task = await self.current_task(task_id)
        return any(message.messageId == message_id for message in task.history or [])

    async def on_tasks_get(self, params: TaskQueryParams, call: Call) -> dict[str, Any]:
        _check_history_length(params.historyLength, "historyLength")
        if params.historyLength is None:
            # The snapshot is the Task's wire form already (the worker wrote `to_wire()`): served as
            # it is, without a round trip through the model.
            await self.authorize(params.id, call.principal)
            wire = await self._store.get_wire(params.id)
            if wire is not None:
                return wire
        task = await self._find(params.id, call.principal)
        return with_history_length(task, params.historyLength).to_wire()

    async def on_tasks_cancel(self, params: TaskIdParams, call: Call) -> dict[str, Any]:
        await self.authorize(params.id, call.principal)
        # A blocking send answers from the Redis log a workflow task before the workflow records the
        # turn's end; what a client has seen terminal is not cancelable, whatever the workflow says yet.
        seen = await self._store.get(params.id)
        if seen is not None and seen.status.state in TERMINAL_STATES:
            raise TaskNotCancelableError(
                f"Task '{params.id}' is {seen.status.state.value}; a terminal task cannot be canceled."
            )
        handle = self._temporal.get_workflow_handle(workflow_id_for(params.id))
        try:
            async with asyncio.timeout(self._settings.blocking_timeout_seconds):
                await handle.execute_update(
                    TaskWorkflow.cancel, CancelTaskInput(metadata=params.metadata)
                )
        except WorkflowUpdateFailedError as err:
            _raise_update_rejection(err)
        except RPCError as err:
            closed = await self._closed_task(params.id, err)
            raise TaskNotCancelableError(
                f"Task '{params.id}' is {closed.status.state.value}; "
                "a terminal task cannot be canceled."
            ) from err
        return (await self.current_task(params.id)).to_wire()

    async def _start_task(
        self,
        task_id: str,
        message: Message,
        blocking: bool,
        principal: Principal,
        push: PushNotificationConfig | None,
    ) -> Task:
        context_id = message.contextId or str(uuid.uuid4())
        owner = self.scope(principal)
        if owner is not None:
            await self._store.set_owner(task_id, owner)
        push_configs = []
        if push is not None:
            push_configs.append((await self._push.save(task_id, push)).config.id or "")
        search_attributes = None
        if self._settings.search_attributes:
            search_attributes = TypedSearchAttributes(
                [
                    SearchAttributePair(CONTEXT_ID_ATTRIBUTE, context_id),
                    SearchAttributePair(AGENT_ATTRIBUTE, self._agent),
                    SearchAttributePair(STATE_ATTRIBUTE, "submitted"),
                ]
            )
        start = WithStartWorkflowOperation(
            TaskWorkflow.run,
            TaskWorkflowInput(
                task_id=task_id,
                context_id=context_id,
                agent=self._agent,
                heartbeat_timeout_seconds=self._settings.agent_heartbeat_timeout_seconds,
                max_agent_attempts=self._settings.max_agent_attempts,
                search_attributes=self._settings.search_attributes,
                owner=owner,
                push=self._push.policy,
                push_configs=push_configs,
            ),
            id=workflow_id_for(task_id),
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=search_attributes,
            static_summary=task_summary(message),
        )
        update = SendMessageInput(message=message, blocking=blocking)
        try:
            async with asyncio.timeout(self._settings.blocking_timeout_seconds):
                if not blocking:
                    accepted: Task | None = await self._temporal.execute_update_with_start_workflow(
                        TaskWorkflow.send_message, update, start_workflow_operation=start
                    )
                    return accepted or await self.current_task(task_id)
                handle = await self._temporal.start_update_with_start_workflow(
                    TaskWorkflow.send_message,
                    update,
                    start_workflow_operation=start,
                    wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                )
                return await self._end_of_turn(task_id, handle, "0")
        except TimeoutError:
            return await self._query_task(task_id)
        except WorkflowUpdateFailedError as err:
            _raise_update_rejection(err)

    async def _continue_task(self, task_id: str, message: Message, blocking: bool) -> Task:
        seen = await self._store.get(task_id)
        if seen is not None and seen.status.state in TERMINAL_STATES:
            raise InvalidParamsError(
                f"Task '{task_id}' is {seen.status.state.value}; a terminal task accepts no messages."
            )
        # The client may have seen the turn end in Redis a few milliseconds before the workflow records
        # it; until then the workflow calls itself busy, and the message is offered again.
        catching_up = seen is not None and seen.status.state in INTERRUPTED_STATES
        update = SendMessageInput(message=message, blocking=blocking)
        delay = 0.01
        try:
            async with asyncio.timeout(self._settings.blocking_timeout_seconds):
                while True:
                    try:
                        return await self._follow_up(task_id, update)
                    except WorkflowUpdateFailedError as err:
                        busy = (
                            isinstance(err.cause, ApplicationError) and err.cause.type == TASK_BUSY
                        )
                        if not (catching_up and busy and delay < 5):
                            raise
                    await asyncio.sleep(delay)
                    delay *= 2
        except TimeoutError:
            return await self._query_task(task_id)
        except WorkflowUpdateFailedError as err:
            _raise_update_rejection(err)
        except RPCError as err:
            closed = await self._closed_task(task_id, err)
            raise InvalidParamsError(
                f"Task '{task_id}' is {closed.status.state.value}; "
                "a terminal task accepts no messages."
            ) from err

    async def _follow_up(self, task_id: str, update: SendMessageInput) -> Task:
        after = await self._store.last_event_id(task_id) if update.blocking else None
        handle = await self._temporal.get_workflow_handle(workflow_id_for(task_id)).start_update(
            TaskWorkflow.send_message, update, wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        if after is None:
            return await handle.result() or await self.current_task(task_id)
        return await self._end_of_turn(task_id, handle, after)

    async def _end_of_turn(
        self, task_id: str, update: WorkflowUpdateHandle[Task | None], after: str
    ) -> Task:
        """The task once the accepted message's turn has ended.

        The worker appends the turn's final event to the Redis log before it reports the turn to
        Temporal, so the log knows one workflow task sooner than the update does. A log that has not
        answered within UPDATE_POLL_AFTER_SECONDS races the update's outcome; a Redis failure leaves
        the update to answer.
        """
        if getattr(update, "_known_outcome", None) is not None:
            # Rejected on arrival (or already done): the handle holds the answer, no call needed.
            # temporalio has no public "is the outcome known"; without the attribute, the rejection
            # would come from the poll below, UPDATE_POLL_AFTER_SECONDS later.
            return await update.result() or await self.current_task(task_id)
        logged = asyncio.ensure_future(self._streams().wait_final(task_id, after))
        finished: asyncio.Future[Task | None] | None = None
        try:
            # The update's own answer is asked for only when the log is slow to give it: polling it
            # is one more long-poll call on Temporal per blocking send.
            alone: set[asyncio.Future[Any]] = {logged}
            done, _ = await asyncio.wait(alone, timeout=UPDATE_POLL_AFTER_SECONDS)
            if not done:
                finished = asyncio.ensure_future(update.result())
                racing: set[asyncio.Future[Any]] = {finished, logged}
                done, _ = await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
            if logged in done and logged.exception() is None:
                return logged.result()
            if logged in done:
                logger.warning("Reading task %s's log failed: %s", task_id, logged.exception())
            if finished is None:
                finished = asyncio.ensure_future(update.result())
            return await finished or await self.current_task(task_id)
        finally:
            waiters: list[asyncio.Future[Any]] = [logged]
            if finished is not None:
                waiters.append(finished)
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def current_task(self, task_id: str) -> Task:
        """The Redis snapshot, else the workflow's own state (which then refills the cache)."""
        task = await self._store.get(task_id)
        if task is None:
            task = await self._query_task(task_id)
            await self._store.refill(task)
        return task

    async def _query_task(self, task_id: str) -> Task:
        handle = self._temporal.get_workflow_handle(workflow_id_for(task_id))
        try:
            async with asyncio.timeout(self._settings.call_timeout_seconds):
                task: Task = await handle.query(TaskWorkflow.get_task)
        except RPCError as err:
            if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                raise task_not_found(task_id) from err
            raise
        except WorkflowQueryFailedError as err:
            raise task_not_found(task_id) from err
        return task

    async def _closed_task(self, task_id: str, err: RPCError) -> Task:
        """The task behind an update refused with `err`: Temporal answers NOT_FOUND both for an unknown
        workflow and for one that already completed, so the query tells the two apart."""
        if err.status != RPCStatusCode.NOT_FOUND:
            raise err
        return await self._query_task(task_id)


def task_summary(message: Message) -> str:
    """The task's line in the Temporal UI: the start of the user's first message on one line, or the
    kinds of its other parts (`[file]`, `[file, data]`) when it has no text."""
    texts = (part.text for part in message.parts if isinstance(part, TextPart))
    text = " ".join(" ".join(texts).split())
    if not text:
        kinds: list[str] = [part.kind for part in message.parts if not isinstance(part, TextPart)]
        return f"[{', '.join(dict.fromkeys(kinds or ['text']))}]"
    encoded = text.encode()
    if len(encoded) <= SUMMARY_MAX_BYTES:
        return text
    # A cut inside a multi-byte character drops that character.
    start = encoded[: SUMMARY_MAX_BYTES - len(ELLIPSIS.encode())].decode(errors="ignore")
    return start.rstrip() + ELLIPSIS


def _raise_update_rejection(err: WorkflowUpdateFailedError) -> NoReturn:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        if cause.type == NOT_CANCELABLE:
            raise TaskNotCancelableError(cause.message) from err
        if cause.type in (NOT_ACCEPTING_MESSAGES, TASK_BUSY, CONTEXT_MISMATCH):
            raise InvalidParamsError(cause.message) from err
    raise err


def _check_send(params: MessageSendParams) -> MessageSendConfiguration:
    config = params.configuration or MessageSendConfiguration()
    _check_history_length(config.historyLength, "configuration.historyLength")
    _check_message(params.message, config)
    return config


def _check_history_length(value: int | None, field: str) -> None:
    if value is not None and value < 0:
        raise InvalidParamsError(f"{field} must be 0 or more, got {value}")


def _check_message(message: Message, config: MessageSendConfiguration) -> None:
    if message.role != "user":
        raise InvalidParamsError(f"message.role must be 'user', got '{message.role}'")
    accepted = config.acceptedOutputModes
    if accepted and not accepts_output(accepted, OUTPUT_MODES):
        raise ContentTypeNotSupportedError(
            f"Incompatible content types: this agent produces {', '.join(OUTPUT_MODES)}; "
            f"configuration.acceptedOutputModes is {accepted}"
        )


def _task_push_config(task_id: str, stored: StoredPushConfig) -> dict[str, Any]:
    return TaskPushNotificationConfig(
        taskId=task_id, pushNotificationConfig=stored.masked()
    ).to_wire()
