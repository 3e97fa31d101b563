"""The task workflow: one A2A task = one workflow run, whose id is the task id.

The workflow holds the Task as its state and is its source of truth. Each user message is one turn: the
`run_agent` activity streams the agent's output to Redis and returns the turn's outcome. Deterministic code
only; every side effect lives in `workers/`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    # Passed through, not re-imported per workflow: building pydantic model classes is costly.
    from protocol import (
        INTERRUPTED_STATES,
        TERMINAL_STATES,
        Message,
        Task,
        TaskEvent,
        TaskState,
        TaskStatus,
        TextPart,
        apply_event,
        timestamp,
        with_metadata,
    )
    from workflows.payloads import (
        CancelTaskInput,
        PublishEventInput,
        PushDeliveryInput,
        RunAgentInput,
        SendMessageInput,
        TaskWorkflowInput,
        TurnOutcome,
    )
    from workflows.push_workflow import deliver

RUN_AGENT = "run_agent"
PUBLISH_EVENT = "publish_event"

# Custom search attributes (registered on the dev server by `a2a-gateway dev` and the test fixtures).
CONTEXT_ID_ATTRIBUTE = SearchAttributeKey.for_keyword("A2AContextId")
AGENT_ATTRIBUTE = SearchAttributeKey.for_keyword("A2AAgent")
STATE_ATTRIBUTE = SearchAttributeKey.for_keyword("A2AState")
SEARCH_ATTRIBUTES = (CONTEXT_ID_ATTRIBUTE, AGENT_ATTRIBUTE, STATE_ATTRIBUTE)
DETAILS_MAX_CHARS = 200
# Workflows that ran before an operator's cancel ended a turn `canceled` (not `failed`) replay as they ran.
OPERATOR_CANCEL_PATCH = "operator-cancel-is-canceled"

# ApplicationError types the gateway maps to JSON-RPC errors.
NOT_ACCEPTING_MESSAGES = "TaskNotAcceptingMessages"
TASK_BUSY = "TaskBusy"
NOT_CANCELABLE = "TaskNotCancelable"
CONTEXT_MISMATCH = "ContextMismatch"


def workflow_id_for(task_id: str) -> str:
    return task_id


def task_queue_for(agent: str) -> str:
    return f"a2a-agent-{agent}"


def current_details(status: TaskStatus) -> str:
    """The workflow's current details in the Temporal UI: the A2A state, then the start of the status
    message (what an input-required task asks, why a task failed)."""
    parts = status.message.parts if status.message is not None else []
    text = " ".join(" ".join(p.text for p in parts if isinstance(p, TextPart)).split())
    if len(text) > DETAILS_MAX_CHARS:
        text = text[: DETAILS_MAX_CHARS - 1].rstrip() + "…"
    return f"{status.state.value}: {text}" if text else status.state.value


@workflow.defn(name="TaskWorkflow")
class TaskWorkflow:
    @workflow.init
    def __init__(self, input: TaskWorkflowInput) -> None:
        self._input = input
        self._task = Task(
            id=input.task_id,
            contextId=input.context_id,
            status=TaskStatus(state=TaskState.SUBMITTED, timestamp=timestamp(workflow.now())),
            history=[],
        )
        workflow.set_current_details(current_details(self._task.status))
        self._pending_messages = 0
        self._turns_ended = 0
        self._cancel_requested = False
        self._agent_call: workflow.ActivityHandle[TurnOutcome] | None = None
        # Push notification config ids, in the order they were set; per config, the notifications
        # waiting for delivery (delivered one at a time, in order).
        self._push_configs: dict[str, None] = dict.fromkeys(input.push_configs)
        self._push_queues: dict[str, list[TaskStatus]] = {}
        # The running sender of each queue (held so that it is not garbage-collected mid-delivery).
        self._push_senders: dict[str, asyncio.Task[None]] = {}

    @workflow.run
    async def run(self, input: TaskWorkflowInput) -> TaskStatus:
        """Returns the final status: the whole Task (history and artifacts) can exceed a payload's 2 MiB;
        the `get_task` query and the Redis snapshot have it."""
        try:
            while self._task.status.state not in TERMINAL_STATES:
                await workflow.wait_condition(
                    lambda: self._pending_messages > 0 or self._cancel_requested
                )
                if self._cancel_requested:
                    break
                self._pending_messages -= 1
                await self._run_turn()
        except asyncio.CancelledError:
            # Cancelled from the Temporal UI or CLI rather than through tasks/cancel: same outcome.
            self._cancel_requested = True
        if self._task.status.state not in TERMINAL_STATES:
            await self._finish(TaskStatus(state=TaskState.CANCELED, timestamp=self._now()))
        # The workflow stays open until its notifications are delivered (or given up on).
        await workflow.wait_condition(
            lambda: not self._push_queues and workflow.all_handlers_finished()
        )
        return self._task.status

    @workflow.query
    def get_task(self) -> Task:
        return self._task

    @workflow.query
    def owner(self) -> str | None:
        return self._input.owner

    @workflow.signal
    def push_configured(self, config_id: str) -> None:
        """A push notification config was set (stored in Redis by the gateway). A terminal task
        notifies it at once."""
        known = config_id in self._push_configs
        self._push_configs[config_id] = None
        if not known and self._task.status.state in TERMINAL_STATES:
            self._enqueue(config_id, self._task.status)

    @workflow.signal
    def push_removed(self, config_id: str) -> None:
        self._push_configs.pop(config_id, None)

    @workflow.update
    async def send_message(self, input: SendMessageInput) -> Task | None:
        """Deliver a user message. Non-blocking: returns the task as accepted. Blocking: returns None when
        the turn has ended; the caller reads the Task from the turn's final event (or snapshot) in Redis
        (returning it here would put history and artifacts in one Temporal payload, capped at 2 MiB)."""
        message = input.message.model_copy(
            update={"taskId": self._task.id, "contextId": self._task.contextId}
        )
        self._task = self._task.model_copy(
            update={"history": [*(self._task.history or []), message]}
        )
        self._pending_messages += 1
        if not input.blocking:
            return self._task
        turn = self._turns_ended + self._pending_messages
        await workflow.wait_condition(
            lambda: self._turns_ended >= turn or self._task.status.state in TERMINAL_STATES
        )
        return None

    @send_message.validator
    def _validate_send_message(self, input: SendMessageInput) -> None:
        state = self._task.status.state
        task_id = self._task.id
        if input.message.contextId not in (None, self._task.contextId):
            raise ApplicationError(
                f"Message contextId '{input.message.contextId}' does not match task '{task_id}' "
                f"(contextId '{self._task.contextId}').",
                type=CONTEXT_MISMATCH,
            )
        if state in TERMINAL_STATES:
            raise ApplicationError(
                f"Task '{task_id}' is {state.value}; a terminal task accepts no messages.",
                type=NOT_ACCEPTING_MESSAGES,
            )
        if self._cancel_requested:
            raise ApplicationError(
                f"Task '{task_id}' is being canceled; it accepts no more messages.",
                type=NOT_ACCEPTING_MESSAGES,
            )
        first_message = not self._task.history
        if self._pending_messages or not (first_message or state in INTERRUPTED_STATES):
            raise ApplicationError(
                f"Task '{task_id}' is {state.value}; it accepts a message only when input-required.",
                type=TASK_BUSY,
            )

    @workflow.update
    async def cancel(self, input: CancelTaskInput) -> None:
        """Returns once the task is terminal and its final event is in Redis (canceled, or completed if
        the turn won the race)."""
        self._cancel_requested = True
        if self._agent_call is not None:
            self._agent_call.cancel()
        await workflow.wait_condition(lambda: self._task.status.state in TERMINAL_STATES)

    @cancel.validator
    def _validate_cancel(self, input: CancelTaskInput) -> None:
        state = self._task.status.state
        if state in TERMINAL_STATES:
            raise ApplicationError(
                f"Task '{self._task.id}' is {state.value}; a terminal task cannot be canceled.",
                type=NOT_CANCELABLE,
            )

    async def _run_turn(self) -> None:
        working = TaskStatus(state=TaskState.WORKING, timestamp=self._now())
        first_turn = self._turns_ended == 0
        before = self._task
        self._set_task(apply_event(self._task, TaskEvent.status_changed(self._task, working)))
        self._agent_call = workflow.start_activity(
            RUN_AGENT,
            RunAgentInput(
                agent=self._input.agent,
                owner=self._input.owner,
                task=before,
                working=working,
                artifact_id=str(workflow.uuid4()),
                first_turn=first_turn,
            ),
            result_type=TurnOutcome,
            start_to_close_timeout=timedelta(seconds=self._input.turn_timeout_seconds),
            heartbeat_timeout=timedelta(seconds=self._input.heartbeat_timeout_seconds),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=500),
                maximum_interval=timedelta(seconds=10),
                maximum_attempts=self._input.max_agent_attempts,
            ),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        try:
            outcome = await self._agent_call
        except ActivityError as err:
            # A cancel from the Temporal UI or CLI reaches a running turn as the cancellation of its
            # activity, not as a CancelledError in `run`.
            if self._cancel_requested or (
                workflow.cancellation_reason() is not None
                and workflow.patched(OPERATOR_CANCEL_PATCH)
            ):
                await self._finish(TaskStatus(state=TaskState.CANCELED, timestamp=self._now()))
            else:
                await self._finish(self._failed_status(err))
            return
        finally:
            self._agent_call = None
        task = self._task
        if outcome.metadata:
            task = with_metadata(task, outcome.metadata)
        if outcome.steps:
            task = task.model_copy(update={"history": [*(task.history or []), *outcome.steps]})
        for artifact in outcome.artifacts:
            task = apply_event(
                task, TaskEvent.progress(task, artifact, append=False, last_chunk=True)
            )
        # The activity already published this final state (and wrote the snapshot) before returning.
        self._set_task(apply_event(task, TaskEvent.status_changed(task, outcome.status)))
        self._turns_ended += 1

    async def _finish(self, status: TaskStatus) -> None:
        """End the task in `status` after a failure or cancel, and publish it (the agent did not).

        The state changes only once the event is in Redis, so a caller woken by it finds the log final.
        """
        task = apply_event(self._task, TaskEvent.status_changed(self._task, status))
        await workflow.execute_activity(
            PUBLISH_EVENT,
            PublishEventInput(event=TaskEvent.completed(task), owner=self._input.owner),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
        )
        self._set_task(task)
        self._turns_ended += 1

    def _failed_status(self, err: ActivityError) -> TaskStatus:
        cause = err.cause
        reason = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
        text = f"Agent '{self._input.agent}' failed: {reason}"
        return TaskStatus(
            state=TaskState.FAILED,
            timestamp=self._now(),
            message=Message(
                role="agent",
                parts=[TextPart(text=text)],
                messageId=str(workflow.uuid4()),
                taskId=self._task.id,
                contextId=self._task.contextId,
            ),
        )

    def _set_task(self, task: Task) -> None:
        state = task.status.state
        changed = state != self._task.status.state
        if changed:
            workflow.set_current_details(current_details(task.status))
            if self._input.search_attributes:
                workflow.upsert_search_attributes([STATE_ATTRIBUTE.value_set(state.value)])
        self._task = task
        if changed and (
            self._input.push.every_status or state in TERMINAL_STATES or state in INTERRUPTED_STATES
        ):
            for config_id in self._push_configs:
                self._enqueue(config_id, task.status)

    def _enqueue(self, config_id: str, status: TaskStatus) -> None:
        queue = self._push_queues.get(config_id)
        if queue is not None:
            queue.append(status)
            return
        self._push_queues[config_id] = [status]
        self._push_senders[config_id] = asyncio.create_task(self._drain(config_id))

    async def _drain(self, config_id: str) -> None:
        """Deliver the config's notifications one at a time, in order. The queue goes away when it is
        empty, whatever happens: the workflow ends only once every queue has."""
        queue = self._push_queues[config_id]
        try:
            while queue:
                status = queue[0]
                if config_id in self._push_configs:
                    delivery = PushDeliveryInput(
                        task_id=self._task.id,
                        context_id=self._task.contextId,
                        status=status,
                        config_id=config_id,
                    )
                    await deliver(delivery, self._input.push)
                queue.pop(0)
        finally:
            del self._push_queues[config_id]
            del self._push_senders[config_id]

    def _now(self) -> str:
        return timestamp(workflow.now())
