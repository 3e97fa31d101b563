"""The activities Temporal runs for the task workflow: an agent's turn, and publishing an event.

Both read the task from the content store by the record the workflow passes, and store what they add
before they return its references."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from config.telemetry import annotate_task
from content import ContentMissingError, ContentStore, metadata_json, wire_json
from protocol import (
    Artifact,
    Message,
    Part,
    Task,
    TaskEvent,
    TaskState,
    TaskStatus,
    apply_event,
    timestamp,
    with_metadata,
)
from protocol.records import ArtifactRef, StatusRecord, TaskRecord
from workers.agents import Agent, AgentReply
from workers.cancels import TurnCancels
from workers.metrics import WorkerMetrics
from workers.publisher import EventPublisher, TaskEndedError
from workflows.names import PUBLISH_EVENT, REQUEST_CANCEL, RUN_AGENT, RUN_QUICK_TURN
from workflows.payloads import PublishEventInput, RunAgentInput, TurnOutcome


class AgentTurn:
    """A turn in progress: applies each event to a local copy of the task and publishes it."""

    def __init__(
        self,
        publisher: EventPublisher,
        contents: ContentStore,
        input: RunAgentInput,
        task: Task,
        *,
        context_messages: int = 0,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self._publisher = publisher
        self._contents = contents
        self._input = input
        self._metrics = metrics if metrics is not None else WorkerMetrics.noop()
        self._started = time.monotonic()
        self._context_limit = context_messages
        # The task as it was before this turn (`input.task` read from the content store).
        self._before = task
        self._task = task
        self._artifact_ids: list[str] = []
        self._chunks_sent = 0
        # The messages of this turn's progress updates, which the history keeps.
        self._steps: list[Message] = []
        # A client's cancel of this turn, delivered over Redis (`TurnCancels`).
        self.cancel = _CancelRequest()

    @property
    def task(self) -> Task:
        return self._task

    @property
    def message(self) -> Message:
        """The user message that started this turn: the last one in the history."""
        return (self._before.history or [])[-1]

    @property
    def partial_state(self) -> dict[str, Any]:
        """What this attempt has sent so far, carried by every heartbeat: after a crash, Temporal hands
        it to the next attempt (`activity.info().heartbeat_details`), which restarts the artifact."""
        return {
            "attempt": activity.info().attempt,
            "artifactId": self._input.artifact_id,
            "chunksSent": self._chunks_sent,
            "steps": len(self._steps),
        }

    async def context(self) -> list[Message]:
        """Earlier turns of this task's context: the messages of the tasks before it, oldest first.
        Read from Redis when an agent asks, so agents that do not pay nothing."""
        return await self._publisher.context_history(
            self._task, self._context_limit, self._input.owner
        )

    async def start(self) -> None:
        if self._input.first_turn:
            # A retried first turn finds the snapshot already there and does not announce the task twice.
            created = await self._publisher.publish(
                TaskEvent.created(self._task),
                self._task,
                only_if_new=True,
                owner=self._input.owner,
            )
            if created is not None:
                await self._publisher.join_context(self._task, self._input.owner)
        await self._publish(TaskEvent.status_changed(self._task, self._input.working))

    async def artifact_chunk(
        self, parts: list[Part], *, last: bool, name: str | None = None
    ) -> None:
        artifact = Artifact(artifactId=self._input.artifact_id, parts=parts, name=name)
        # Every attempt starts the artifact afresh (append=false), so a retry after a crash replaces the
        # partial text clients already have instead of duplicating it.
        append = self._chunks_sent > 0
        self._chunks_sent += 1
        if artifact.artifactId not in self._artifact_ids:
            self._artifact_ids.append(artifact.artifactId)
        await self._publish(
            TaskEvent.progress(self._task, artifact, append=append, last_chunk=last)
        )
        if not append:
            self._metrics.first_token(time.monotonic() - self._started)
        self.heartbeat()

    async def progress(self, parts: list[Part]) -> None:
        message = self._agent_message(parts)
        status = TaskStatus(state=TaskState.WORKING, timestamp=_now(), message=message)
        await self._publish(TaskEvent.status_changed(self._task, status))
        self._steps.append(message)
        self.heartbeat()

    def heartbeat(self) -> None:
        """Record this attempt's progress with Temporal (sent at most once per throttle interval)."""
        # A local activity has none: it lives inside a workflow task.
        if not activity.info().is_local:
            activity.heartbeat(self.partial_state)

    async def finish(self, reply: AgentReply) -> TurnOutcome:
        """Store what the turn produced, publish its end, and return it as references."""
        message = self._agent_message(reply.message) if reply.message else None
        status = TaskStatus(state=reply.state, timestamp=_now(), message=message)
        if reply.metadata:
            self._task = with_metadata(self._task, reply.metadata)
        artifacts = [a for a in self._task.artifacts or [] if a.artifactId in self._artifact_ids]
        # One write: the steps, the artifacts, the status message, the metadata, in that order.
        pieces = [wire_json(m) for m in [*self._steps, *artifacts, *([message] if message else [])]]
        if reply.metadata:
            pieces.append(metadata_json(self._task.metadata or {}))
        refs = await self._contents.put(self._task.id, pieces)
        steps = refs[: len(self._steps)]
        artifact_refs = [
            ArtifactRef(artifactId=a.artifactId, content=ref)
            for a, ref in zip(artifacts, refs[len(steps) :], strict=False)
        ]
        after = len(steps) + len(artifacts)
        status_record = StatusRecord.of(status, refs[after] if message else None)
        metadata = refs[-1] if reply.metadata else None
        self._task = apply_event(self._task, TaskEvent.status_changed(self._task, status))
        published = await self._publisher.publish(
            TaskEvent.completed(self._task), self._task, owner=self._input.owner
        )
        if published is None:
            return await self.ended()
        self._metrics.turn_finished(reply.state, time.monotonic() - self._started)
        return TurnOutcome(
            status=status_record, artifacts=artifact_refs, metadata=metadata, steps=steps
        )

    async def ended(self) -> TurnOutcome:
        """The outcome of a turn whose task something else ended meanwhile (a cancel, or an earlier
        attempt of this turn): the status its log ended with, and nothing of this attempt's."""
        status = await self._publisher.ended_status(self._task.id)
        record = await self._contents.put_status(self._task.id, status or self._task.status)
        self._metrics.turn_finished(record.state, time.monotonic() - self._started)
        return TurnOutcome(status=record)

    async def _publish(self, event: TaskEvent) -> None:
        self._task = apply_event(self._task, event)
        if await self._publisher.publish(event, self._task, owner=self._input.owner) is None:
            raise TaskEndedError(self._task.id)
        # On Python 3.11, redis-py's `asyncio.wait_for` can swallow a cancel that lands just as a
        # command completes; the flags say whether the turn was cancelled meanwhile.
        if activity.is_cancelled() or self.cancel.fired:
            raise asyncio.CancelledError

    def _agent_message(self, parts: list[Part]) -> Message:
        return Message(
            role="agent",
            parts=parts,
            messageId=str(uuid.uuid4()),
            taskId=self._task.id,
            contextId=self._task.contextId,
        )


class TaskActivities:
    def __init__(
        self,
        publisher: EventPublisher,
        contents: ContentStore,
        agents: Mapping[str, Agent],
        cancels: TurnCancels,
        *,
        heartbeat_interval: float = 30.0,
        context_messages: int = 0,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self._publisher = publisher
        self._contents = contents
        self._agents = agents
        self._cancels = cancels
        self._heartbeat_interval = heartbeat_interval
        self._context_messages = context_messages
        self._metrics = metrics if metrics is not None else WorkerMetrics.noop()

    @activity.defn(name=RUN_AGENT)
    async def run_agent(self, input: RunAgentInput) -> TurnOutcome:
        outcome = await self._run(input, quick_only=False)
        assert outcome is not None
        return outcome

    @activity.defn(name=RUN_QUICK_TURN)
    async def run_quick_turn(self, input: RunAgentInput) -> TurnOutcome | None:
        """The turn, when the agent says it ends quickly (the workflow runs this as a local
        activity, within its workflow task); None, with nothing done, when it does not."""
        return await self._run(input, quick_only=True)

    async def _run(self, input: RunAgentInput, *, quick_only: bool) -> TurnOutcome | None:
        annotate_task(input.task.id, input.task.contextId)
        agent = self._agents.get(input.agent)
        if agent is None:
            raise ApplicationError(
                f"This worker serves no agent named '{input.agent}'", non_retryable=True
            )
        task = await self._read(input.task, strict=True)
        turn = AgentTurn(
            self._publisher,
            self._contents,
            input,
            task,
            context_messages=self._context_messages,
            metrics=self._metrics,
        )
        if quick_only and not agent.quick(turn.message):
            return None
        previous = activity.info().heartbeat_details
        if previous:
            activity.logger.info(
                "Attempt %d restarts the turn after %s", activity.info().attempt, previous[0]
            )
        # Heartbeats tell Temporal the worker lives; cancels come over Redis (`TurnCancels`), with
        # Temporal's own (delivered with a heartbeat) as the backstop.
        beating = None if quick_only else asyncio.create_task(self._heartbeat(turn))
        try:
            async with self._cancels.running(task.id, turn.cancel.fire) as requested:
                if requested:
                    turn.cancel.fire()
                return await self._turn(agent, turn)
        except TaskEndedError:
            return await turn.ended()
        finally:
            if beating is not None:
                beating.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beating

    async def _turn(self, agent: Agent, turn: AgentTurn) -> TurnOutcome:
        """Run the agent; a client's cancel (`turn.cancel`) ends the turn canceled with what it has
        streamed so far. A cancel from Temporal propagates: the workflow ends the task."""
        try:
            await turn.start()
            work = asyncio.ensure_future(agent.run(turn))
            turn.cancel.attach(work)
            reply = await work
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not turn.cancel.fired or (current is not None and current.cancelling()):
                raise
        # A cancel that came before the turn's end wins, also when the agent swallowed it.
        if turn.cancel.fired:
            reply = AgentReply(TaskState.CANCELED)
        return await turn.finish(reply)

    @activity.defn(name=REQUEST_CANCEL)
    async def request_cancel(self, task_id: str) -> None:
        """An operator canceled the task's workflow: its running turn hears of it over Redis."""
        await self._cancels.request(task_id, self._publisher.ttl_seconds)

    @activity.defn(name=PUBLISH_EVENT)
    async def publish_event(self, input: PublishEventInput) -> StatusRecord:
        """End the task in `input.status`: store its message, publish the task's final event. A task
        that has ended already (a cancel's fast path won) keeps the status it ended with."""
        annotate_task(input.task.id, input.task.contextId)
        # What the store lost is left out: the task's end is published whatever else is gone.
        task = await self._read(input.task, strict=False)
        record = await self._contents.put_status(task.id, input.status)
        task = apply_event(task, TaskEvent.status_changed(task, input.status))
        if await self._publisher.publish(TaskEvent.completed(task), task, owner=input.owner):
            return record
        ended = await self._publisher.ended_status(task.id)
        return record if ended is None else await self._contents.put_status(task.id, ended)

    async def _read(self, record: TaskRecord, *, strict: bool) -> Task:
        """The task `record` describes. What can never be read (gone from the store, or stored in a
        shape that no longer parses) fails the activity for good instead of retrying it."""
        try:
            return await self._contents.task(record, strict=strict)
        except ContentMissingError as err:
            raise ApplicationError(
                f"Task '{record.id}' cannot be read: {err}", non_retryable=True
            ) from err

    async def _heartbeat(self, turn: AgentTurn) -> None:
        # The first after an interval, not at once: a turn shorter than that sends none (each is a
        # call that Temporal records).
        while True:
            await asyncio.sleep(self._heartbeat_interval)
            activity.heartbeat(turn.partial_state)


class _CancelRequest:
    """A client's cancel of one running turn, which may come before the agent starts."""

    def __init__(self) -> None:
        self.fired = False
        self._work: asyncio.Future[Any] | None = None

    def fire(self) -> None:
        self.fired = True
        if self._work is not None:
            self._work.cancel()

    def attach(self, work: asyncio.Future[Any]) -> None:
        self._work = work
        if self.fired:
            work.cancel()


def _now() -> str:
    return timestamp(datetime.now(UTC))
