"""Workflows recorded by earlier versions replay with the current workflow code.

`tests/histories/<version>/` holds histories recorded by `python -m tests.histories.record` at the
commit each version names (see its README): a change of history shape must keep them replaying
(`workflow.patched`), or Temporal fails every open task of that shape on the next worker deploy."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workers.worker import WORKFLOWS, workflow_runner

HISTORIES = sorted((Path(__file__).parents[1] / "histories").glob("*/*.json"))
HISTORY_TEXT = {path: path.read_text() for path in HISTORIES}


def test_histories_are_there() -> None:
    versions = {path.parent.name for path in HISTORIES}
    assert {"v1", "v2", "v3"} <= versions
    assert len(HISTORIES) >= 9


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, HISTORY_TEXT[path])
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None
