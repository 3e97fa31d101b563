from __future__ import annotations

import pytest

from protocol import DataPart, Message, TaskState, TaskStatus, TextPart
from protocol.records import current_details


def status(state: TaskState, *texts: str) -> TaskStatus:
    message = None
    if texts:
        parts = [TextPart(text=text) for text in texts] + [DataPart(data={"k": 1})]
        message = Message(role="agent", parts=parts, messageId="m1")
    return TaskStatus(state=state, message=message)


@pytest.mark.parametrize(
    ("task_status", "details"),
    [
        (status(TaskState.WORKING), "working"),
        (status(TaskState.COMPLETED), "completed"),
        (
            status(TaskState.INPUT_REQUIRED, "Which\n  city?", "Paris or Rome"),
            "input-required: Which city? Paris or Rome",
        ),
        (status(TaskState.FAILED, "x" * 200), "failed: " + "x" * 200),
        (status(TaskState.FAILED, "x" * 201), "failed: " + "x" * 199 + "…"),
    ],
)
def test_current_details_state_then_start_of_status_message(
    task_status: TaskStatus, details: str
) -> None:
    assert current_details(task_status) == details
