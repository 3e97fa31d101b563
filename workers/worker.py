"""Builds the Temporal worker that serves one agent's task queue."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import Counter
from datetime import timedelta
from types import CodeType
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.worker import (
    PollerBehaviorSimpleMaximum,
    Worker,
    WorkflowInstance,
    WorkflowInstanceDetails,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
from temporalio.worker.workflow_sandbox._runner import _Instance as _SandboxInstance

from config.agents import AgentConfig, AgentsConfigError
from config.webhook_policy import Resolver, WebhookPolicy, system_resolver
from content import ContentStore
from workers.activities import TaskActivities
from workers.agents import Agent, ClaudeAgent, ClaudeOptions, EchoAgent, EchoOptions
from workers.cancels import TurnCancels
from workers.metrics import WorkerMetrics
from workers.publisher import EventPublisher
from workers.push_delivery import PushActivities
from workers.settings import WorkerSettings
from workers.webhook_sender import WebhookSender
from workflows.names import task_queue_for
from workflows.push_workflow import PushWorkflow
from workflows.task import TaskWorkflow

WORKFLOWS = [TaskWorkflow, PushWorkflow]
# The share of the worker's workflow task polls on the task queue, the rest on its sticky queue
# (WorkerSettings.workflow_task_polls): the SDK's `nonsticky_to_sticky_poll_ratio` is this fraction.
TASK_QUEUE_POLL_SHARE = 0.8


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox re-imports a workflow's modules for every new workflow unless they are passed
    through: ours are, since they keep no state (rebuilding their pydantic classes was a third of a
    task's worker CPU, compiling the workflow modules a fifth). The sandbox's checks on what
    workflow code calls still apply."""
    return _CompiledSandboxRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("protocol", "workflows")
    )


class _CompiledSandboxRunner(SandboxedWorkflowRunner):
    """The SDK's sandbox, with the snippets it runs in a workflow's sandbox compiled once.

    The sandbox enters a workflow's sandbox by `exec` of a snippet of source, which compiles it on
    every call: to create the workflow, for each activation, and for every payload of an activation
    and of its completion (its serialization context), about 20 times per workflow task. The
    snippets are a handful of constant strings; run as code objects compiled once they do
    exactly what their source does, without the 6% of the worker's CPU that compiling took. It
    builds on the SDK's private `_Instance._run_code`; `tests/integration/test_workflow_sandbox.py`
    fails if a temporalio release stops calling it."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _CompiledSandbox(det, self.runner_class, self.restrictions)


class _CompiledSandbox(_SandboxInstance):
    def _run_code(self, code: str, **extra_globals: Any) -> None:
        super()._run_code(_compiled(code), **extra_globals)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=64)
def _compiled(code: str) -> CodeType:
    return compile(code, "<string>", "exec")


def build_agent(name: str, config: AgentConfig, *, anthropic_api_key: str | None = None) -> Agent:
    """The agent `config` describes. Invalid options, or a Claude agent without an API key, raise
    AgentsConfigError naming the agent."""
    options_type = ClaudeOptions if config.kind == "claude" else EchoOptions
    try:
        options = options_type.model_validate(config.options)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in err.errors(include_url=False)
        )
        raise AgentsConfigError(f"agents.{name}.options: {problems}") from err
    if isinstance(options, ClaudeOptions):
        if not anthropic_api_key:
            raise AgentsConfigError(
                f"agent '{name}' is a Claude agent: set ANTHROPIC_API_KEY to run its worker"
            )
        return ClaudeAgent(options, anthropic_api_key)
    return EchoAgent(options)


class AgentWorker(Worker):
    """A Temporal worker that also listens for cancels of the turns it runs (`TurnCancels`)."""

    def __init__(self, cancels: TurnCancels, client: Client, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.cancels = cancels

    async def run(self) -> None:
        listener = asyncio.create_task(self.cancels.listen())
        try:
            await super().run()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


def create_worker(
    client: Client,
    redis: Redis,
    settings: WorkerSettings,
    *,
    resolver: Resolver = system_resolver,
    push_outcomes: Counter[str] | None = None,
    metrics: WorkerMetrics | None = None,
) -> AgentWorker:
    """The worker of `settings.agent`'s task queue. `resolver` looks webhook hosts up; push delivery
    outcomes are counted in `push_outcomes` (tests swap the one, read the other). `metrics` records
    this worker's own metrics (none by default)."""
    config = settings.agent_config()
    metrics = metrics if metrics is not None else WorkerMetrics.noop()
    publisher = EventPublisher(
        redis,
        stream_max_length=settings.stream_max_length,
        ttl_seconds=settings.retention_seconds,
        metrics=metrics,
        sharded=settings.redis_cluster,
    )
    contents = ContentStore(redis, ttl_seconds=settings.retention_seconds)
    cancels = TurnCancels(redis, settings.redis_target())
    activities = TaskActivities(
        publisher,
        contents,
        {settings.agent: build_agent(settings.agent, config, anthropic_api_key=settings.api_key())},
        cancels,
        heartbeat_interval=settings.heartbeat_seconds,
        context_messages=settings.context_messages,
        metrics=metrics,
    )
    policy = WebhookPolicy.parse(settings.push_allow_http, settings.push_allowlist)
    push = PushActivities(
        redis,
        contents,
        WebhookSender(policy, resolver=resolver, timeout=settings.push_timeout_seconds),
        outcomes=push_outcomes,
        metrics=metrics,
    )
    return AgentWorker(
        cancels,
        client,
        task_queue=config.task_queue or task_queue_for(settings.agent),
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(),
        activities=[
            activities.run_agent,
            activities.run_quick_turn,
            activities.request_cancel,
            activities.publish_event,
            push.deliver_push,
        ],
        max_concurrent_activities=settings.max_concurrent_activities,
        max_cached_workflows=settings.max_cached_workflows,
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(settings.workflow_task_polls),
        nonsticky_to_sticky_poll_ratio=TASK_QUEUE_POLL_SHARE,
        max_heartbeat_throttle_interval=timedelta(seconds=settings.heartbeat_seconds),
        graceful_shutdown_timeout=timedelta(seconds=settings.shutdown_grace_seconds),
    )
