"""A task's line in the Temporal UI, and where a blocking send learns that its turn has ended."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import RedisError

import gateway.tasks.turns
from gateway.tasks.summary import task_summary
from gateway.tasks.turns import end_of_turn
from protocol import (
    DataPart,
    FilePart,
    FileWithUri,
    Message,
    Part,
    Task,
    TaskState,
    TaskStatus,
    TextPart,
)

PDF = FilePart(file=FileWithUri(uri="https://example.com/a.pdf", mimeType="application/pdf"))
DATA = DataPart(data={"k": 1})


def message(*parts: Part) -> Message:
    return Message(role="user", parts=list(parts), messageId="m1")


@pytest.mark.parametrize(
    ("parts", "summary"),
    [
        ([TextPart(text="Plan the launch")], "Plan the launch"),
        (
            [TextPart(text="  Plan  the\nlaunch\r\n"), PDF, TextPart(text="\tfor Monday ")],
            "Plan the launch for Monday",
        ),
        ([TextPart(text="x" * 200)], "x" * 200),
        ([TextPart(text="x" * 201)], "x" * 197 + "…"),
        ([TextPart(text="a" * 196 + " bbbb")], "a" * 196 + "…"),
        # 2 bytes each: the 99th would straddle the cut at 197 bytes.
        ([TextPart(text="é" * 101)], "é" * 98 + "…"),
        ([PDF], "[file]"),
        ([DATA], "[data]"),
        ([PDF, TextPart(text=" \n"), DATA, PDF], "[file, data]"),
        ([TextPart(text=" \n")], "[text]"),
    ],
)
def test_task_summary_is_one_line_of_at_most_200_bytes(parts: list[Part], summary: str) -> None:
    got = task_summary(message(*parts))
    assert got == summary
    assert len(got.encode()) <= 200


LOGGED = Task(id="t", contextId="c", status=TaskStatus(state=TaskState.COMPLETED))
UPDATED = Task(id="t", contextId="c", status=TaskStatus(state=TaskState.INPUT_REQUIRED))


class Update:
    """The update's outcome, UPDATED, as `end_of_turn` asks for it: counted."""

    def __init__(self) -> None:
        self.calls = 0

    async def result(self) -> Task:
        self.calls += 1
        return UPDATED


class Log:
    """The Redis log of the turn: it `answers` LOGGED, `hangs`, or `fails`."""

    def __init__(self, log: str) -> None:
        self.log = log
        self.reads = 0
        self.cancelled = False

    async def wait_final(self) -> Task:
        self.reads += 1
        if self.log == "fails":
            raise RedisError("connection refused")
        if self.log == "hangs":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise
        return LOGGED


@pytest.mark.parametrize(
    ("log", "known", "answer", "reads", "polls"),
    [
        ("answers", False, LOGGED, 1, 0),  # the usual case: no call on Temporal
        ("hangs", False, UPDATED, 1, 1),  # after UPDATE_POLL_AFTER_SECONDS, the update answers
        ("fails", False, UPDATED, 1, 1),  # Redis failing: the update answers at once
        ("answers", True, UPDATED, 0, 1),  # rejected on arrival: the handle already knows
    ],
)
async def test_end_of_turn_asks_temporal_only_when_the_log_cannot_answer(
    log: str,
    known: bool,
    answer: Task,
    reads: int,
    polls: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gateway.tasks.turns, "UPDATE_POLL_AFTER_SECONDS", 0.05)
    turn_log = Log(log)
    update = Update()
    async with asyncio.timeout(5):
        got = await end_of_turn(turn_log.wait_final, update.result, known=known)
    assert got == answer
    assert (turn_log.reads, update.calls) == (reads, polls)
    assert turn_log.cancelled == (log == "hangs")
