from __future__ import annotations

import pytest

from gateway.handlers import task_summary
from protocol import DataPart, FilePart, FileWithUri, Message, Part, TextPart

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
