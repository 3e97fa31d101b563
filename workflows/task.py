"""The task workflow: one A2A task = one workflow run, whose id is the task id.

The workflow holds the task's record as its state and is its source of truth: ids, states, and the
order of its messages and artifacts, whose content lives in the content store (`protocol.records`).
Each user message is one turn, an activity that reads the task from the store, streams the agent's
output to Redis and returns references. Deterministic code only; side effects live in `workers/`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, cast

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from workflows.names import (
    PUBLISH_EVENT,
    REQUEST_CANCEL,
    RUN_AGENT,
    RUN_QUICK_TURN,
    STATE_ATTRIBUTE,
)

with workflow.unsafe.imports_passed_through():
    # Passed through, not re-imported per workflow: building pydantic model classes is costly.
    from protocol import (
        INTERRUPTED_STATES,
        TERMINAL_STATES,
        TaskState,
        TaskStatus,
        timestamp,
    )
    from protocol.records import StatusRecord, TaskRecord
    from workflows import patches
    from workflows.acceptance import NOT_CANCELABLE, message_refusal
    from workflows.failures import end_of_run, failed_status, failure_reason
    from workflows.payloads import (
        CancelTaskInput,
        PublishEventInput,
        RunAgentInput,
        SendMessageInput,
        TaskWorkflowInput,
        TurnOutcome,
    )
    from workflows.push_workflow import Notifications

# A quick turn that has not ended after this long is retried (it holds its workflow task meanwhile).
QUICK_TURN_TIMEOUT = timedelta(seconds=60)

# Attempts of `publish_event` (about five minutes with its backoff) before the workflow ends the task
# without it: the task's end is then in Temporal only.
PUBLISH_ATTEMPTS = 30


@workflow.defn(name="TaskWorkflow")
class TaskWorkflow:
    @workflow.init
    def __init__(self, input: TaskWorkflowInput) -> None:
        self._input = input
        self._task = input.record or TaskRecord(
            id=input.task_id,
            contextId=input.context_id,
            status=StatusRecord.of(
                TaskStatus(state=TaskState.SUBMITTED, timestamp=timestamp(workflow.now()))
            ),
        )
        workflow.set_current_details(self._task.status.details)
        self._pending_messages = 0
        self._in_turn = False
        # Ending for want of a first message: no message is accepted any more.
        self._closing = False
        self._turns_ended = input.turns_ended
        self._cancel_requested = False
        self._agent_call: workflow.ActivityHandle[Any] | None = None
        # The state the A2AState search attribute holds.
        self._indexed = self._task.status.state
        # Whether the caller of the message to run next waits for its turn to end (a blocking send).
        self._caller_waits = False
        self._push = Notifications(
            self._task.id, self._task.contextId, input.push_configs, input.push
        )

    @workflow.run
    async def run(self, input: TaskWorkflowInput) -> StatusRecord:
        """Returns the final status; the `get_task` query has the task's record, the Redis snapshot
        the Task itself."""
        try:
            while self._task.status.state not in TERMINAL_STATES:
                ran = self._turns_ended > self._input.turns_ended
                # A run continues as new only after a turn of its own: a record that alone passes
                # the bound would otherwise start run after run.
                if ran and self._long_history() and await self._quiet():
                    workflow.continue_as_new(self._next_run_input())
                if not await self._next_message():
                    break
                self._pending_messages -= 1
                self._in_turn = True
                try:
                    await self._run_turn()
                finally:
                    self._in_turn = False
        except asyncio.CancelledError:
            # Cancelled from the Temporal UI or CLI rather than through tasks/cancel: same outcome.
            self._cancel_requested = True
        if self._task.status.state not in TERMINAL_STATES:
            await self._finish(TaskStatus(state=TaskState.CANCELED, timestamp=self._now()))
        # The workflow stays open until its notifications are delivered (or given up on).
        await workflow.wait_condition(lambda: self._push.idle and workflow.all_handlers_finished())
        operator = workflow.cancellation_reason() is not None
        ending = end_of_run(self._task.status, cancel_requested_in_temporal=operator)
        if ending is not None and workflow.patched(patches.VISIBLE_ENDS_PATCH):
            raise ending
        return self._task.status

    @workflow.query
    def get_task(self) -> TaskRecord:
        return self._task

    @workflow.query
    def owner(self) -> str | None:
        return self._input.owner

    @workflow.signal
    def push_configured(self, config_id: str) -> None:
        """A push notification config was set (stored in Redis by the gateway). A terminal task
        notifies it at once."""
        if self._push.add(config_id) and self._task.status.state in TERMINAL_STATES:
            self._push.notify(self._task.status, config_id)

    @workflow.signal
    def push_removed(self, config_id: str) -> None:
        self._push.remove(config_id)

    @workflow.update
    async def send_message(self, input: SendMessageInput) -> TaskRecord | None:
        """Deliver a user message (stored in the content store by the caller). Non-blocking: returns
        the task's record as accepted. Blocking: returns None when the turn has ended; the caller reads
        the Task from the turn's final event (or snapshot) in Redis."""
        if self._repeated(input):
            # A client's retry of a message already here: delivered once, answered like the first.
            if not input.blocking:
                return self._task
            await workflow.wait_condition(
                lambda: (
                    (self._pending_messages == 0 and not self._in_turn)
                    or self._task.status.state in TERMINAL_STATES
                )
            )
            return None
        self._task = self._task.with_message(input.content)
        self._pending_messages += 1
        self._caller_waits = input.blocking
        if not input.blocking:
            return self._task
        turn = self._turns_ended + self._pending_messages
        await workflow.wait_condition(
            lambda: self._turns_ended >= turn or self._task.status.state in TERMINAL_STATES
        )
        return None

    @send_message.validator
    def _validate_send_message(self, input: SendMessageInput) -> None:
        if self._repeated(input):
            return
        refusal = message_refusal(
            self._task,
            input.context_id,
            pending=self._pending_messages > 0,
            ending=(
                "being canceled"
                if self._cancel_requested
                else "ending without a first message"
                if self._closing
                else None
            ),
        )
        if refusal is not None:
            raise refusal

    def _repeated(self, input: SendMessageInput) -> bool:
        """The same message (same JSON, so same id) is in the history already."""
        return input.content in self._task.history

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

    async def _next_message(self) -> bool:
        """Wait for a message to run (True) or a cancel (False). A task whose first message never
        arrived (its start succeeded, the update carrying the message did not) ends failed."""
        waiting = lambda: self._pending_messages > 0 or self._cancel_requested  # noqa: E731
        if self._task.history:
            await workflow.wait_condition(waiting)
        else:
            try:
                await workflow.wait_condition(
                    waiting, timeout=timedelta(seconds=self._input.first_message_timeout_seconds)
                )
            except TimeoutError:
                self._closing = True
                await self._finish(
                    self._failed(
                        "no message arrived within "
                        f"{self._input.first_message_timeout_seconds:g} s of the task's start"
                    )
                )
                return False
        return not self._cancel_requested

    def _long_history(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_size() > self._input.continue_as_new_after_bytes
        )

    async def _quiet(self) -> bool:
        """Wait until no handler runs and no notification waits; False if a message or a cancel
        arrived meanwhile (the run carries on with it)."""
        await workflow.wait_condition(
            lambda: (
                (workflow.all_handlers_finished() and self._push.idle)
                or self._pending_messages > 0
                or self._cancel_requested
            )
        )
        return not (self._pending_messages or self._cancel_requested)

    def _next_run_input(self) -> TaskWorkflowInput:
        return self._input.model_copy(
            update={
                "record": self._task,
                "turns_ended": self._turns_ended,
                "push_configs": list(self._push.configs),
            }
        )

    async def _run_turn(self) -> None:
        working = TaskStatus(state=TaskState.WORKING, timestamp=self._now())
        first_turn = self._turns_ended == 0
        before = self._task
        # A blocking send's turn may run inside the workflow task that accepts it, when the agent
        # says it is quick: its caller waits for the end anyway. Anyone else sees the message
        # accepted at once, and a stream its first events while the turn runs.
        quick = self._caller_waits and workflow.patched(patches.QUICK_TURNS_PATCH)
        # A quick turn is `working` for less than its workflow task: Temporal's index skips it.
        self._set_task(self._task.with_status(StatusRecord.of(working)), index=not quick)
        agent_input = RunAgentInput(
            agent=self._input.agent,
            owner=self._input.owner,
            task=before,
            working=working,
            artifact_id=str(workflow.uuid4()),
            first_turn=first_turn,
        )
        try:
            outcome = await self._run_agent(agent_input, quick=quick)
        except FailureError as err:
            # A local activity's failure is not an ActivityError. An operator's cancel reaches a
            # running turn as the cancellation of its activity, not as a CancelledError in `run`.
            if self._cancel_requested or (
                workflow.cancellation_reason() is not None
                and workflow.patched(patches.OPERATOR_CANCEL_PATCH)
            ):
                await self._finish(TaskStatus(state=TaskState.CANCELED, timestamp=self._now()))
            else:
                await self._finish(self._failed_status(err))
            return
        finally:
            self._agent_call = None
        task = self._task
        if outcome.metadata is not None:
            task = task.model_copy(update={"metadata": outcome.metadata})
        for step in outcome.steps:
            task = task.with_message(step)
        for artifact in outcome.artifacts:
            task = task.with_artifact(artifact)
        # The activity already published this final state (and wrote the snapshot) before returning.
        self._set_task(task.with_status(outcome.status))
        self._turns_ended += 1

    async def _run_agent(self, agent_input: RunAgentInput, *, quick: bool) -> TurnOutcome:
        """The turn's outcome: from a local activity when the agent says the turn is quick, else
        from an activity (heartbeating, cancelable from the workflow)."""
        retry_policy = RetryPolicy(
            initial_interval=timedelta(milliseconds=500),
            maximum_interval=timedelta(seconds=10),
            maximum_attempts=self._input.max_agent_attempts,
        )
        waiting = workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
        if quick:
            self._agent_call = workflow.start_local_activity(
                RUN_QUICK_TURN,
                agent_input,
                result_type=TurnOutcome | None,  # type: ignore[arg-type]
                start_to_close_timeout=min(
                    QUICK_TURN_TIMEOUT, timedelta(seconds=self._input.turn_timeout_seconds)
                ),
                retry_policy=retry_policy,
                cancellation_type=waiting,
            )
            outcome: TurnOutcome | None = await self._agent_call
            if outcome is not None:
                return outcome
            self._index(TaskState.WORKING)
        self._agent_call = workflow.start_activity(
            RUN_AGENT,
            agent_input,
            result_type=TurnOutcome,
            start_to_close_timeout=timedelta(seconds=self._input.turn_timeout_seconds),
            heartbeat_timeout=timedelta(seconds=self._input.heartbeat_timeout_seconds),
            retry_policy=retry_policy,
            cancellation_type=waiting,
        )
        if not workflow.patched(patches.OPERATOR_CANCEL_OVER_REDIS_PATCH):
            return cast(TurnOutcome, await self._agent_call)
        try:
            return await asyncio.shield(self._agent_call)
        except asyncio.CancelledError:
            # An operator cancels the workflow: the turn hears of it over Redis at once, as of a
            # tasks/cancel; the activity's cancel (with its next heartbeat) stays the backstop.
            await workflow.execute_local_activity(
                REQUEST_CANCEL, self._task.id, start_to_close_timeout=timedelta(seconds=10)
            )
            self._agent_call.cancel()
            return cast(TurnOutcome, await self._agent_call)

    async def _finish(self, status: TaskStatus) -> None:
        """End the task in `status` after a failure or cancel, and publish it (the agent did not).

        The state changes only once the event is in Redis, so a caller woken by it finds the log final.
        When Redis cannot be reached for several minutes, the task ends in Temporal alone.
        """
        try:
            record: StatusRecord = await workflow.execute_activity(
                PUBLISH_EVENT,
                PublishEventInput(task=self._task, status=status, owner=self._input.owner),
                result_type=StatusRecord,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(
                    maximum_interval=timedelta(seconds=10), maximum_attempts=PUBLISH_ATTEMPTS
                ),
            )
        except ActivityError as err:
            workflow.logger.error("Task %s ended unpublished: %s", self._task.id, err.cause or err)
            record = StatusRecord.of(status)
        self._set_task(self._task.with_status(record))
        self._turns_ended += 1

    def _failed_status(self, err: FailureError) -> TaskStatus:
        return self._failed(f"Agent '{self._input.agent}' failed: {failure_reason(err)}")

    def _failed(self, text: str) -> TaskStatus:
        return failed_status(
            text,
            timestamp=self._now(),
            message_id=str(workflow.uuid4()),
            task_id=self._task.id,
            context_id=self._task.contextId,
        )

    def _set_task(self, task: TaskRecord, *, index: bool = True) -> None:
        state = task.status.state
        changed = state != self._task.status.state
        if changed:
            workflow.set_current_details(task.status.details)
        if index:
            self._index(state)
        self._task = task
        if changed and (
            self._input.push.every_status or state in TERMINAL_STATES or state in INTERRUPTED_STATES
        ):
            self._push.notify(task.status)

    def _index(self, state: TaskState) -> None:
        """File the workflow under `state` in Temporal's index (the A2AState search attribute)."""
        if self._input.search_attributes and state != self._indexed:
            workflow.upsert_search_attributes([STATE_ATTRIBUTE.value_set(state.value)])
            self._indexed = state

    def _now(self) -> str:
        return timestamp(workflow.now())
