"""The workers' workflow runner (`workers.worker.workflow_runner`) against a real Temporal server: the
sandbox, entered through snippets compiled once, runs workflows and still refuses what workflow code
must not call."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from tests.integration.sandboxed import Clock, Greeting
from workers.worker import _compiled, workflow_runner


async def test_the_sandbox_runs_workflows_from_compiled_snippets_and_keeps_its_checks(
    temporal_client: Client,
) -> None:
    queue = f"test-sandbox-{uuid.uuid4().hex[:8]}"
    _compiled.cache_clear()
    async with Worker(
        temporal_client,
        task_queue=queue,
        workflows=[Clock, Greeting],
        workflow_runner=workflow_runner(),
        # The refusal fails the workflow rather than retrying its workflow task forever.
        workflow_failure_exception_types=[Exception],
    ):
        greeting = await temporal_client.execute_workflow(
            "SandboxGreeting",
            "sandbox",
            id=f"greeting-{uuid.uuid4()}",
            task_queue=queue,
            result_type=str,
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await temporal_client.execute_workflow(
                "SandboxClock", id=f"clock-{uuid.uuid4()}", task_queue=queue
            )

    assert greeting == "hello sandbox"
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "RestrictedWorkflowAccessError"
    assert "datetime.datetime.now" in cause.message
    # Each snippet was compiled once and then reused.
    cached = _compiled.cache_info()
    assert cached.misses == cached.currsize
    assert cached.hits > cached.misses
