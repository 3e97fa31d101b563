"""Every call the gateway makes to Temporal, and the one mapping of Temporal's errors to A2A errors.

A task is the workflow whose id is the task id (`workflows.task.workflow_id_for`). Its first message
starts it (Update-with-Start), later messages and cancels are updates, owners and states are queries,
push configs are signals.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateStage,
)
from temporalio.common import (
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from content import ContentStore
from gateway.settings import GatewaySettings
from gateway.tasks.admission import StartAdmission
from gateway.tasks.rejections import (
    no_more_messages,
    not_cancelable,
    possible_workflow_id,
    raise_update_rejection,
    task_not_found,
)
from gateway.tasks.starts import Route, start_operation
from gateway.tasks.store import TaskStore
from gateway.tasks.turns import TurnLog, end_of_turn
from protocol import (
    INTERRUPTED_STATES,
    TERMINAL_STATES,
    Message,
    Task,
    TaskState,
)
from protocol.records import TaskRecord
from workflows.acceptance import TASK_BUSY
from workflows.names import workflow_id_for
from workflows.payloads import (
    CancelTaskInput,
    PushDeliveryInput,
    PushPolicy,
    PushWorkflowInput,
    SendMessageInput,
)
from workflows.push_workflow import PushWorkflow, push_workflow_id
from workflows.task import TaskWorkflow

_T = TypeVar("_T")


class TemporalTasks:
    """The tasks as Temporal runs them, with the Redis snapshot in front for reads."""

    def __init__(
        self,
        temporal: Client,
        store: TaskStore,
        contents: ContentStore,
        log: TurnLog,
        settings: GatewaySettings,
        push: PushPolicy,
    ) -> None:
        self._temporal = temporal
        self._store = store
        self._contents = contents
        self._log = log
        self._settings = settings
        self._push = push
        self.admission = StartAdmission(
            settings.max_pending_starts, settings.admission_wait_seconds
        )

    async def start(
        self,
        route: Route,
        task_id: str,
        context_id: str,
        message: Message,
        *,
        blocking: bool,
        owner: str | None,
        push_configs: list[str],
        repeated: bool = False,
    ) -> Task:
        """Start the task's workflow with its first message; the task once the turn ends (`blocking`)
        or once the message is accepted. Idempotent: a `repeated` start finds the workflow already
        running (or closed) and the workflow takes the same message once."""
        if repeated:
            seen = await self._store.get(task_id)
            if seen is not None and seen.status.state in TERMINAL_STATES:
                return seen
        start = start_operation(
            self._settings, self._push, route, task_id, context_id, message, owner, push_configs
        )
        update = await self._message_input(task_id, message, blocking)
        try:
            async with asyncio.timeout(self._settings.blocking_timeout_seconds):
                if not blocking:
                    async with self.admission.place():
                        accepted = await self._temporal.execute_update_with_start_workflow(
                            TaskWorkflow.send_message, update, start_workflow_operation=start
                        )
                    return await self._accepted(task_id, accepted)
                return await self._started_turn(task_id, update, start)
        except TimeoutError:
            return await self.query_task(task_id)
        except WorkflowUpdateFailedError as err:
            if not repeated:
                await self._discard(task_id)
            raise_update_rejection(err)
        except WorkflowAlreadyStartedError:
            # A repeated start of a task that has ended: its workflow closed, and is not run again.
            return await self.current_task(task_id)

    async def _started_turn(
        self,
        task_id: str,
        update: SendMessageInput,
        start: WithStartWorkflowOperation[Any, Any],
    ) -> Task:
        """A blocking first message's turn, from the log or the accepted start, whichever knows first:
        a quick turn's final event is in the log before Temporal reports the acceptance."""
        logged = asyncio.ensure_future(self._log.wait_final(task_id, "0"))
        starting: asyncio.Future[WorkflowUpdateHandle[TaskRecord | None]] | None = None
        try:
            async with self.admission.place():
                starting = asyncio.ensure_future(
                    self._temporal.start_update_with_start_workflow(
                        TaskWorkflow.send_message,
                        update,
                        start_workflow_operation=start,
                        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                    )
                )
                await asyncio.wait({starting, logged}, return_when=asyncio.FIRST_COMPLETED)
            if not starting.done() and logged.exception() is None:
                return logged.result()
            handle = await starting
        except BaseException:
            logged.cancel()
            raise
        finally:
            if starting is not None and not starting.done():  # answered from the log, or given up
                starting.add_done_callback(_retrieved)
        return await self._end_of_turn(task_id, handle, "0", logged)

    async def _discard(self, task_id: str) -> None:
        """End the workflow just started for a first message it refused: nothing is left running."""
        with contextlib.suppress(RPCError, TimeoutError):
            async with asyncio.timeout(self._settings.call_timeout_seconds):
                await self._handle(task_id).terminate(reason="its first message was refused")

    async def send(self, task_id: str, message: Message, *, blocking: bool) -> Task:
        """Deliver a follow-up message to the task's workflow; the task once the turn ends
        (`blocking`) or once the message is accepted."""
        seen = await self.accepting_messages(task_id)
        # The client may have seen the turn end in Redis a few milliseconds before the workflow records
        # it; until then the workflow calls itself busy, and the message is offered again.
        catching_up = seen is not None and seen.status.state in INTERRUPTED_STATES
        update = await self._message_input(task_id, message, blocking)
        try:
            async with asyncio.timeout(self._settings.blocking_timeout_seconds):
                return await self._offer(task_id, update, retry_busy=catching_up)
        except TimeoutError:
            return await self.query_task(task_id)
        except WorkflowUpdateFailedError as err:
            raise_update_rejection(err)
        except RPCError as err:
            raise no_more_messages(task_id, await self._closed_task(task_id, err)) from err

    def _handle(self, task_id: str) -> WorkflowHandle[Any, Any]:
        """The task's workflow; -32001 at once for an id no workflow can have."""
        if not possible_workflow_id(task_id):
            raise task_not_found(task_id)
        return self._temporal.get_workflow_handle(workflow_id_for(task_id))

    async def _message_input(
        self, task_id: str, message: Message, blocking: bool
    ) -> SendMessageInput:
        """The update that delivers `message`, once the message is in the content store."""
        async with asyncio.timeout(self._settings.call_timeout_seconds):
            content = await self._contents.put_message(task_id, message)
        return SendMessageInput(
            message_id=message.messageId,
            # An empty contextId names no context, as an absent one.
            context_id=message.contextId or None,
            content=content,
            blocking=blocking,
        )

    async def _accepted(self, task_id: str, record: TaskRecord | None) -> Task:
        """The task as a non-blocking send's update accepted it."""
        if record is None:
            return await self.current_task(task_id)
        return await self._contents.task(record, strict=False)

    async def turn_end(self, task_id: str) -> Task:
        """The task once the turn running now ends, from the log (at once when none runs). The
        snapshot is read after the log's position: a final event and its snapshot are one write."""
        after = await self._log.last_event_id(task_id) or "0"
        seen = await self._store.get(task_id)
        if seen is not None and seen.status.state in TERMINAL_STATES | INTERRUPTED_STATES:
            return seen
        try:
            async with asyncio.timeout(self._settings.blocking_timeout_seconds):
                return await self._log.wait_final(task_id, after)
        except TimeoutError:
            return await self.current_task(task_id)

    async def accepting_messages(self, task_id: str) -> Task | None:
        """The task as Redis last saw it (None: Redis does not know it); -32602 when that is
        terminal, since a terminal task accepts no messages."""
        seen = await self._store.get(task_id)
        if seen is not None and seen.status.state in TERMINAL_STATES:
            raise no_more_messages(task_id, seen)
        return seen

    async def _offer(self, task_id: str, update: SendMessageInput, *, retry_busy: bool) -> Task:
        delay = 0.01
        while True:
            try:
                return await self._follow_up(task_id, update)
            except WorkflowUpdateFailedError as err:
                busy = isinstance(err.cause, ApplicationError) and err.cause.type == TASK_BUSY
                if not (retry_busy and busy and delay < 5):
                    raise
            await asyncio.sleep(delay)
            delay *= 2

    async def _follow_up(self, task_id: str, update: SendMessageInput) -> Task:
        after = await self._log.last_event_id(task_id) if update.blocking else None
        async with self.admission.place():
            handle = await self._handle(task_id).start_update(
                TaskWorkflow.send_message, update, wait_for_stage=WorkflowUpdateStage.ACCEPTED
            )
        if after is None:
            return await self._accepted(task_id, await handle.result())
        return await self._end_of_turn(task_id, handle, after)

    async def _end_of_turn(
        self,
        task_id: str,
        update: WorkflowUpdateHandle[TaskRecord | None],
        after: str,
        logged: asyncio.Future[Task] | None = None,
    ) -> Task:
        # temporalio has no public "is the outcome known": a handle that was rejected on arrival (or
        # is done) holds its outcome, and `result()` then makes no call. Without looking, the rejection
        # would come from the poll, UPDATE_POLL_AFTER_SECONDS later.
        known = getattr(update, "_known_outcome", None) is not None

        async def result() -> Task | None:
            # A blocking update's outcome carries no task.
            return None if await update.result() is None else await self.current_task(task_id)

        if logged is None:
            logged = asyncio.ensure_future(self._log.wait_final(task_id, after))
        try:
            outcome = await end_of_turn(lambda: logged, result, known=known)
        finally:
            logged.cancel()
        return outcome or await self.current_task(task_id)

    async def cancel(self, task_id: str) -> Task:
        """Cancel the task's turn; the task as it is then."""
        # A blocking send answers from the Redis log a workflow task before the workflow records the
        # turn's end; what a client has seen terminal is not cancelable, whatever the workflow says yet.
        seen = await self._store.get(task_id)
        if seen is not None and seen.status.state in TERMINAL_STATES:
            raise not_cancelable(task_id, seen)
        handle = self._handle(task_id)
        # A running turn hears of it over Redis at once; the workflow's update is the durable path
        # (and what decides whether the task was cancelable). A task Redis does not know yet has no
        # turn running: the workflow cancels its turn before it starts.
        first = seen is not None and await self._store.request_cancel(task_id)
        try:
            async with asyncio.timeout(self._settings.blocking_timeout_seconds):
                # The request's metadata is not the workflow's to keep: it stays out of Temporal.
                await handle.execute_update(TaskWorkflow.cancel, CancelTaskInput())
        except WorkflowUpdateFailedError as err:
            if not (first and await self._canceled(task_id)):
                raise_update_rejection(err)
        except RPCError as err:
            if not (first and await self._canceled(task_id)):
                raise not_cancelable(task_id, await self._closed_task(task_id, err)) from err
        return await self.current_task(task_id)

    async def _canceled(self, task_id: str) -> bool:
        """Whether the task ended canceled: when this request was its first cancel, the turn it
        reached over Redis ended it before the workflow heard of the request (which then calls the
        task not cancelable, or has closed)."""
        return (await self.current_task(task_id)).status.state == TaskState.CANCELED

    async def current_task(self, task_id: str) -> Task:
        """The Redis snapshot, else the workflow's own state (which then refills the cache)."""
        task = await self._store.get(task_id)
        if task is None:
            task = await self.query_task(task_id)
            await self._store.refill(task)
        return task

    async def query_task(self, task_id: str) -> Task:
        """The workflow's own state of the task, its content read from the content store (what the
        store lost left out); -32001 when there is no such workflow."""
        record: TaskRecord = await self._query(task_id, TaskWorkflow.get_task)
        return await self._contents.task(record, strict=False)

    async def owner(self, task_id: str) -> str | None:
        """The principal that created the task (None: created without tenancy); Redis remembers it,
        the workflow answers when Redis has forgotten. -32001 when there is no such task."""
        owner = await self._store.owner(task_id)
        if owner is None:
            owner = await self.query_owner(task_id)
            if owner is not None:
                await self._store.set_owner(task_id, owner)
        return owner

    async def query_owner(self, task_id: str) -> str | None:
        """The workflow's own answer (Redis not asked); -32001 when there is no such workflow."""
        owner: str | None = await self._query(task_id, TaskWorkflow.owner)
        return owner

    async def _query(self, task_id: str, query: Callable[[TaskWorkflow], _T]) -> _T:
        handle = self._handle(task_id)
        try:
            async with asyncio.timeout(self._settings.call_timeout_seconds):
                return await handle.query(query)
        except RPCError as err:
            if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                raise task_not_found(task_id) from err
            raise
        except WorkflowQueryFailedError as err:
            raise task_not_found(task_id) from err

    async def _closed_task(self, task_id: str, err: RPCError) -> Task:
        """The task behind an update refused with `err`: Temporal answers NOT_FOUND both for an unknown
        workflow and for one that already completed, so the query tells the two apart."""
        if err.status != RPCStatusCode.NOT_FOUND:
            raise err
        return await self.query_task(task_id)

    async def push_configured(self, task_id: str, config_id: str, task_queue: str) -> None:
        """Tell the task's workflow about a config it must notify. A workflow that has closed (its task
        is terminal) cannot hear it: a `PushWorkflow` delivers the terminal notification instead."""
        if await self._signal(task_id, TaskWorkflow.push_configured, config_id):
            return
        current = await self.current_task(task_id)
        delivery = PushDeliveryInput(
            task_id=task_id,
            context_id=current.contextId,
            status=await self._contents.put_status(task_id, current.status),
            config_id=config_id,
        )
        async with asyncio.timeout(self._settings.call_timeout_seconds):
            await self._temporal.start_workflow(
                PushWorkflow.run,
                PushWorkflowInput(delivery=delivery, policy=self._push),
                id=push_workflow_id(task_id, config_id),
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )

    async def push_removed(self, task_id: str, config_id: str) -> None:
        """Tell the task's workflow a config is gone (nothing to tell once it has closed)."""
        await self._signal(task_id, TaskWorkflow.push_removed, config_id)

    async def _signal(
        self, task_id: str, signal: Callable[[TaskWorkflow, str], None], arg: str
    ) -> bool:
        """Signal the task's workflow; False when it has closed (or never was)."""
        handle = self._handle(task_id)
        try:
            async with asyncio.timeout(self._settings.call_timeout_seconds):
                await handle.signal(signal, arg)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            return False
        return True


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a future's outcome as seen (nobody awaits it any more)."""
    if not future.cancelled():
        future.exception()
