from __future__ import annotations

import pytest

from protocol import (
    Artifact,
    Message,
    Task,
    TaskEvent,
    TaskState,
    TaskStatus,
    TextPart,
    apply_event,
    with_history_length,
)
from workers.agents.echo import split_text


def make_task(history_texts: list[str] | None = None) -> Task:
    history = [
        Message(role="user", parts=[TextPart(text=text)], messageId=f"m{i}")
        for i, text in enumerate(history_texts or [])
    ]
    return Task(
        id="t", contextId="c", status=TaskStatus(state=TaskState.SUBMITTED), history=history
    )


def chunk(text: str) -> Artifact:
    return Artifact(artifactId="a", parts=[TextPart(text=text)], name="echo")


def test_apply_event_progress_appends_then_replaces() -> None:
    task = make_task()
    task = apply_event(task, TaskEvent.progress(task, chunk("he"), append=False, last_chunk=False))
    task = apply_event(task, TaskEvent.progress(task, chunk("llo"), append=True, last_chunk=True))
    assert task.to_wire()["artifacts"] == [
        {
            "artifactId": "a",
            "name": "echo",
            "parts": [{"kind": "text", "text": "he"}, {"kind": "text", "text": "llo"}],
        }
    ]
    # A retried attempt restarts the artifact: append=false replaces what was there.
    task = apply_event(task, TaskEvent.progress(task, chunk("h"), append=False, last_chunk=False))
    assert task.to_wire()["artifacts"] == [
        {"artifactId": "a", "name": "echo", "parts": [{"kind": "text", "text": "h"}]}
    ]


def test_apply_event_status_with_message_joins_history() -> None:
    task = make_task(["hi"])
    reply = Message(role="agent", parts=[TextPart(text="more?")], messageId="r")
    status = TaskStatus(state=TaskState.INPUT_REQUIRED, message=reply)
    task = apply_event(task, TaskEvent.status_changed(task, status))
    assert task.status == status
    assert [m.messageId for m in task.history or []] == ["m0", "r"]


def test_apply_event_completed_takes_the_events_task() -> None:
    final = make_task(["x"]).model_copy(update={"status": TaskStatus(state=TaskState.COMPLETED)})
    assert apply_event(make_task(), TaskEvent.completed(final)) == final


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (None, ["m0", "m1", "m2"]),
        (0, []),
        (1, ["m2"]),
        (2, ["m1", "m2"]),
        (2147483647, ["m0", "m1", "m2"]),
    ],
)
def test_with_history_length_keeps_the_tail(length: int | None, expected: list[str]) -> None:
    task = with_history_length(make_task(["a", "b", "c"]), length)
    assert [m.messageId for m in task.history or []] == expected


@pytest.mark.parametrize(
    ("text", "chunks", "expected"),
    [
        ("hello", 1, ["hello"]),
        ("hello", 5, ["h", "e", "l", "l", "o"]),
        ("hello", 2, ["hel", "lo"]),
        ("hi", 5, ["h", "i"]),
        ("abcdefghij", 3, ["abcd", "efg", "hij"]),
    ],
)
def test_split_text_near_equal_consecutive_pieces(
    text: str, chunks: int, expected: list[str]
) -> None:
    assert split_text(text, chunks) == expected
