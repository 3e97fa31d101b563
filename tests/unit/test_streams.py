"""The two SSE views of a log entry, the subscriber buffer, a stream's batches, and Last-Event-ID parsing."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from redis.exceptions import RedisError

from gateway.streaming.batches import Batches, Ending
from gateway.streaming.feed import TaskFeed
from gateway.streaming.log import (
    EventLog,
    LogEntry,
    LogRead,
    entry_key,
    parse_last_event_id,
    snapshot_entry,
)
from gateway.streaming.renderers import A2ARenderer, BrowserRenderer
from gateway.streaming.subscription import Subscription
from protocol import InvalidParamsError
from tests.a2a_schema import assert_valid_response

TASK: dict[str, Any] = {
    "id": "t1",
    "contextId": "c1",
    "status": {"state": "working"},
    "history": [
        {
            "role": "user",
            "parts": [{"kind": "text", "text": "a"}],
            "messageId": "m1",
            "kind": "message",
        },
        {
            "role": "user",
            "parts": [{"kind": "text", "text": "b"}],
            "messageId": "m2",
            "kind": "message",
        },
    ],
    "kind": "task",
}
DONE = {**TASK, "status": {"state": "completed"}}
ARTIFACT = {"artifactId": "a1", "parts": [{"kind": "text", "text": "hi"}]}
EVENTS = {
    "created": LogEntry(
        "1-0", {"type": "task.created", "taskId": "t1", "contextId": "c1", "task": TASK}
    ),
    "status": LogEntry(
        "1-1",
        {"type": "task.status", "taskId": "t1", "contextId": "c1", "status": {"state": "working"}},
    ),
    "progress": LogEntry(
        "2-0",
        {
            "type": "task.progress",
            "taskId": "t1",
            "contextId": "c1",
            "artifact": ARTIFACT,
            "append": True,
            "lastChunk": False,
        },
    ),
    "completed": LogEntry(
        "3-0", {"type": "task.completed", "taskId": "t1", "contextId": "c1", "task": DONE}
    ),
    "error": LogEntry(
        "3-1",
        {
            "type": "task.error",
            "taskId": "t1",
            "contextId": "c1",
            "error": {"code": -32603, "message": "Internal error"},
        },
    ),
}


def parsed(frame: bytes) -> tuple[str, Any]:
    head, data, blank = frame.split(b"\n", 2)
    assert blank == b"\n"
    assert head.startswith(b"id: ")
    assert data.startswith(b"data: ")
    return head[4:].decode(), orjson.loads(data[6:])


@pytest.mark.parametrize(
    ("name", "result"),
    [
        ("created", TASK),
        (
            "status",
            {
                "taskId": "t1",
                "contextId": "c1",
                "status": {"state": "working"},
                "final": False,
                "kind": "status-update",
            },
        ),
        (
            "progress",
            {
                "taskId": "t1",
                "contextId": "c1",
                "artifact": ARTIFACT,
                "append": True,
                "lastChunk": False,
                "kind": "artifact-update",
            },
        ),
        (
            "completed",
            {
                "taskId": "t1",
                "contextId": "c1",
                "status": {"state": "completed"},
                "final": True,
                "kind": "status-update",
            },
        ),
    ],
)
def test_a2a_frame_is_a_streaming_response_with_the_entry_id(
    name: str, result: dict[str, Any]
) -> None:
    entry_id, body = parsed(A2ARenderer("r1").frame(EVENTS[name]))
    assert (entry_id, body) == (EVENTS[name].id, {"jsonrpc": "2.0", "id": "r1", "result": result})
    assert_valid_response(body, "message/stream")


def test_a2a_frame_of_an_error_event_is_an_error_response() -> None:
    assert parsed(A2ARenderer(4).frame(EVENTS["error"])) == (
        "3-1",
        {"jsonrpc": "2.0", "id": 4, "error": {"code": -32603, "message": "Internal error"}},
    )


def test_a2a_task_frames_honour_history_length() -> None:
    _, body = parsed(A2ARenderer(1, history_length=1).frame(EVENTS["created"]))
    assert [m["messageId"] for m in body["result"]["history"]] == ["m2"]
    _, body = parsed(A2ARenderer(1, history_length=0).frame(EVENTS["created"]))
    assert body["result"]["history"] == []


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("created", {"type": "task.created", "task": TASK}),
        ("status", {"type": "task.status", "taskId": "t1", "status": {"state": "working"}}),
        (
            "progress",
            {
                "type": "task.progress",
                "taskId": "t1",
                "artifact": ARTIFACT,
                "append": True,
                "lastChunk": False,
            },
        ),
        ("completed", {"type": "task.completed", "task": DONE}),
        (
            "error",
            {
                "type": "task.error",
                "taskId": "t1",
                "error": {"code": -32603, "message": "Internal error"},
            },
        ),
    ],
)
def test_browser_frame_payload_shapes(name: str, payload: dict[str, Any]) -> None:
    assert parsed(BrowserRenderer().frame(EVENTS[name])) == (EVENTS[name].id, payload)


def test_a_snapshot_reads_as_a_task_in_both_views() -> None:
    entry = snapshot_entry("9-0", TASK)
    assert parsed(A2ARenderer(1).frame(entry)) == (
        "9-0",
        {"jsonrpc": "2.0", "id": 1, "result": TASK},
    )
    assert parsed(BrowserRenderer().frame(entry)) == ("9-0", {"type": "task.created", "task": TASK})


def test_where_each_view_ends() -> None:
    a2a, browser = A2ARenderer(1), BrowserRenderer()
    paused = {**TASK, "status": {"state": "input-required"}}
    end_of_turn = LogEntry("5-0", {"type": "task.completed", "task": paused})
    assert [a2a.ends(e) for e in (*EVENTS.values(), end_of_turn)] == [
        False,
        False,
        False,
        True,
        True,
        True,
    ]
    # The browser stream outlives a turn that waits for input; it ends with the task.
    assert [browser.ends(e) for e in (*EVENTS.values(), end_of_turn)] == [
        False,
        False,
        False,
        True,
        True,
        False,
    ]
    assert [a2a.ends(snapshot_entry("1-0", t)) for t in (TASK, paused, DONE)] == [
        False,
        True,
        True,
    ]
    assert [browser.ends(snapshot_entry("1-0", t)) for t in (TASK, paused, DONE)] == [
        False,
        False,
        True,
    ]


async def test_subscription_overflow_drops_the_buffer_and_flags_it() -> None:
    subscription = Subscription(limit=2)
    for entry in list(EVENTS.values())[:2]:
        subscription.push(entry)
    assert await subscription.next(0) == list(EVENTS.values())[:2]
    for entry in EVENTS.values():
        subscription.push(entry)
    assert subscription.overflowed
    assert await subscription.next(0) == []


async def test_subscription_next_waits_at_most_its_wait() -> None:
    subscription = Subscription(limit=2)
    assert await subscription.next(0.01) == []
    assert not subscription.signalled


class ScriptedLog(EventLog):
    """A task's log whose reads answer `reads` in turn (an exception is raised)."""

    def __init__(self, *reads: LogRead | Exception) -> None:
        self._reads = list(reads)

    async def read_after(self, task_id: str, position: str | None, count: int) -> LogRead:
        read = self._reads.pop(0)
        if isinstance(read, Exception):
            raise read
        return read


async def opened_batches(
    subscription: Subscription, wait: float | None, *later_reads: LogRead | Exception
) -> Batches:
    """The batches of task t1's browser stream, whose first read of the log gives task.created."""
    log = ScriptedLog(LogRead([EVENTS["created"]], None), *later_reads)
    feed = TaskFeed(log, subscription, "t1", "0", close_on_overflow=True)
    first = (await feed.first()).entries
    return Batches("t1", first, feed, BrowserRenderer(), wait)


async def test_batches_give_the_first_read_then_live_entries_up_to_the_last() -> None:
    subscription = Subscription(limit=8)
    batches = await opened_batches(subscription, None)
    for name in ("status", "progress", "completed", "error"):
        subscription.push(EVENTS[name])
    received = [(batch, batches.live) async for batch in batches]
    assert received == [
        ([EVENTS["created"]], False),
        ([EVENTS["status"], EVENTS["progress"], EVENTS["completed"]], True),
    ]
    assert batches.ending is Ending.DONE


async def test_batches_give_an_empty_batch_after_wait_then_stop_when_the_feed_closes() -> None:
    subscription = Subscription(limit=8)
    batches = await opened_batches(subscription, 0.01)
    assert await anext(batches) == [EVENTS["created"]]
    assert await anext(batches) == []
    subscription.close()
    assert [batch async for batch in batches] == []
    assert batches.ending is Ending.CLOSED


async def test_batches_of_a_client_that_fell_behind_stop_behind() -> None:
    subscription = Subscription(limit=1)
    batches = await opened_batches(subscription, None)
    subscription.push(EVENTS["status"])
    subscription.push(EVENTS["progress"])
    assert [batch async for batch in batches] == [[EVENTS["created"]]]
    assert batches.ending is Ending.BEHIND


async def test_batches_stop_failed_when_the_log_cannot_be_read() -> None:
    subscription = Subscription(limit=8)
    batches = await opened_batches(subscription, None, RedisError("Connection reset by peer"))
    subscription.mark_resync()
    assert [batch async for batch in batches] == [[EVENTS["created"]]]
    assert batches.ending is Ending.FAILED


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        ([], []),
        ([EVENTS["created"], EVENTS["status"]], [[EVENTS["created"], EVENTS["status"]]]),
        ([EVENTS["completed"], EVENTS["error"]], [[EVENTS["completed"]]]),
    ],
)
async def test_batches_without_a_feed_are_the_first_read_alone(
    first: list[LogEntry], expected: list[list[LogEntry]]
) -> None:
    batches = Batches("t1", first, None, BrowserRenderer(), 0.01)
    assert [batch async for batch in batches] == expected
    assert batches.ending is Ending.DONE


@pytest.mark.parametrize(
    ("raw", "parsed_id"),
    [
        (None, None),
        ("", None),
        ("0", "0"),
        ("1700000000000-0", "1700000000000-0"),
        (" 5-1 ", "5-1"),
    ],
)
def test_last_event_id_accepts_entry_ids(raw: str | None, parsed_id: str | None) -> None:
    assert parse_last_event_id(raw) == parsed_id


@pytest.mark.parametrize("raw", ["banana", "12", "1-2-3", "-1-0", "1-"])
def test_last_event_id_refuses_anything_else(raw: str) -> None:
    with pytest.raises(InvalidParamsError) as caught:
        parse_last_event_id(raw)
    assert caught.value.message == (
        "Last-Event-ID must be an event id this gateway sent (like 1700000000000-0), "
        f"got {raw.strip()!r}"
    )


def test_entry_keys_order_like_redis() -> None:
    ids = ["1700000000000-10", "0", "1700000000000-9", "1700000000001-0"]
    assert sorted(ids, key=entry_key) == [
        "0",
        "1700000000000-9",
        "1700000000000-10",
        "1700000000001-0",
    ]
