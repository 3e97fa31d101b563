"""A task ends once, whoever ends it (issue 18): the turn reached by a cancel over Redis, the
workflow's own publication of the end (its backstop), or a retried attempt of the turn. The
activities run against the real Redis; the order of the three is forced, as a worker dying between
them would leave it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from content import ContentStore
from redis.asyncio import Redis
from temporalio.testing import ActivityEnvironment

from protocol import Message, TaskState, TaskStatus, TextPart
from protocol.records import StatusRecord, TaskRecord
from tests.integration import eventlog
from workers.activities import TaskActivities
from workers.agents import EchoAgent, EchoOptions
from workers.cancels import TurnCancels
from workers.publisher import EventPublisher
from workflows.payloads import PublishEventInput, RunAgentInput, TurnOutcome

STAMP = "2026-12-06T10:00:00.000Z"


async def test_a_task_cancelled_over_redis_ends_once_whatever_ends_it_after(redis: Redis) -> None:
    task_id = f"once-{uuid.uuid4().hex[:8]}"
    contents = ContentStore(redis, ttl_seconds=600)
    publisher = EventPublisher(redis, stream_max_length=1000, ttl_seconds=600)
    cancels = TurnCancels(redis)
    activities = TaskActivities(publisher, contents, {"echo": EchoAgent(EchoOptions())}, cancels)
    slow = {"echo": {"chunks": 5, "delay": 30}}
    user = Message(role="user", parts=[TextPart(text="a b c d e")], messageId="m1", metadata=slow)
    record = TaskRecord(
        id=task_id,
        contextId="ctx",
        status=StatusRecord(state=TaskState.SUBMITTED, timestamp=STAMP),
        history=[await contents.put_message(task_id, user)],
    )
    turn_input = RunAgentInput(
        agent="echo",
        task=record,
        working=TaskStatus(state=TaskState.WORKING, timestamp=STAMP),
        artifact_id="art",
        first_turn=True,
    )

    running = asyncio.create_task(ActivityEnvironment().run(activities.run_agent, turn_input))
    await eventlog.read_until(redis, task_id, eventlog.count("task.progress", at_least=1))
    cancels.requested(task_id)
    outcome: TurnOutcome = await asyncio.wait_for(running, 10)
    assert outcome.status.state == TaskState.CANCELED
    log = await eventlog.events(redis, task_id)
    assert [e["type"] for e in log] == [
        "task.created",
        "task.status",
        "task.progress",
        "task.completed",
    ]
    ended: dict[str, Any] = log[-1]["task"]
    assert ended["status"]["state"] == "canceled"
    assert ended["artifacts"] == [
        {"artifactId": "art", "name": "echo", "parts": [{"kind": "text", "text": "a "}]}
    ]

    # The workflow, not having heard the turn's outcome (its worker died), ends the task itself:
    # the log keeps the end it has, and the workflow records that end.
    working = record.with_status(StatusRecord.of(turn_input.working))
    canceled = TaskStatus(state=TaskState.CANCELED, timestamp="2026-12-06T10:00:09.000Z")
    kept: StatusRecord = await ActivityEnvironment().run(
        activities.publish_event, PublishEventInput(task=working, status=canceled)
    )
    assert kept == StatusRecord(
        state=TaskState.CANCELED, timestamp=ended["status"]["timestamp"], details="canceled"
    )
    # A retried attempt of the turn adds nothing either, and reports the same end.
    again: TurnOutcome = await ActivityEnvironment().run(activities.run_agent, turn_input)
    assert again == TurnOutcome(status=kept)
    assert await eventlog.events(redis, task_id) == log


async def test_a_turn_that_starts_after_the_cancel_request_ends_canceled_at_once(
    redis: Redis,
) -> None:
    """The request's marker covers a turn the channel's message could not reach (not yet started,
    or its worker resubscribing)."""
    task_id = f"once-{uuid.uuid4().hex[:8]}"
    contents = ContentStore(redis, ttl_seconds=600)
    publisher = EventPublisher(redis, stream_max_length=1000, ttl_seconds=600)
    activities = TaskActivities(
        publisher, contents, {"echo": EchoAgent(EchoOptions())}, TurnCancels(redis)
    )
    user = Message(role="user", parts=[TextPart(text="x")], messageId="m1")
    record = TaskRecord(
        id=task_id,
        contextId="ctx",
        status=StatusRecord(state=TaskState.SUBMITTED, timestamp=STAMP),
        history=[await contents.put_message(task_id, user)],
    )
    await redis.set(f"a2a:task:{{{task_id}}}:cancel", 1, ex=60)
    outcome: TurnOutcome = await ActivityEnvironment().run(
        activities.run_agent,
        RunAgentInput(
            agent="echo",
            task=record,
            working=TaskStatus(state=TaskState.WORKING, timestamp=STAMP),
            artifact_id="art",
            first_turn=True,
        ),
    )
    assert outcome.status.state == TaskState.CANCELED
    log = await eventlog.events(redis, task_id)
    assert [(e["type"], (e.get("task") or e).get("status", {}).get("state")) for e in log] == [
        ("task.created", "submitted"),
        ("task.status", "working"),
        ("task.completed", "canceled"),
    ]
