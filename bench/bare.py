"""The baseline the latency benchmark compares the gateway with: the smallest useful Temporal round
trip, a workflow that runs one activity (which returns its input) and returns the activity's result.

Definitions only; nothing runs at import time (the workflow sandbox re-imports this module)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

BARE_WORKFLOW = "BareWorkflow"
BARE_ACTIVITY = "bare_echo"


@activity.defn(name=BARE_ACTIVITY)
async def bare_echo(value: str) -> str:
    return value


@workflow.defn(name=BARE_WORKFLOW)
class BareWorkflow:
    @workflow.run
    async def run(self, value: str) -> str:
        return await workflow.execute_activity(
            bare_echo, value, start_to_close_timeout=timedelta(seconds=30)
        )
