"""Workflows for `test_workflow_sandbox`, in a module of their own that the sandbox imports."""

from __future__ import annotations

import datetime

from temporalio import workflow


@workflow.defn(name="SandboxClock")
class Clock:
    """Reads the wall clock, which the sandbox refuses to workflow code."""

    @workflow.run
    async def run(self) -> str:
        return datetime.datetime.now().isoformat()


@workflow.defn(name="SandboxGreeting")
class Greeting:
    @workflow.run
    async def run(self, name: str) -> str:
        return f"hello {name}"
