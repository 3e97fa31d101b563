"""Push notification delivery, as the task workflow and `PushWorkflow` run it: one `deliver_push`
activity per notification and config, retried with backoff by Temporal. Deterministic code only."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from protocol.records import StatusRecord
    from workflows.payloads import PushDeliveryInput, PushPolicy, PushWorkflowInput

DELIVER_PUSH = "deliver_push"

# ApplicationError types of `deliver_push` that end its retries: the receiver answered 4xx or a
# redirect, or the webhook address policy refused the URL.
PUSH_REJECTED = "PushRejected"
PUSH_REFUSED = "PushRefused"


def push_workflow_id(task_id: str, config_id: str) -> str:
    return f"{task_id}/push/{config_id}"


async def deliver(delivery: PushDeliveryInput, policy: PushPolicy) -> None:
    """Deliver one notification, retrying until it is delivered, rejected or out of attempts. A
    delivery that gives up is logged (and counted by the worker); it never fails the task."""
    try:
        await workflow.execute_activity(
            DELIVER_PUSH,
            delivery,
            start_to_close_timeout=timedelta(seconds=policy.attempt_timeout_seconds),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=policy.initial_interval_seconds),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=policy.maximum_interval_seconds),
                maximum_attempts=policy.maximum_attempts,
                non_retryable_error_types=[PUSH_REJECTED, PUSH_REFUSED],
            ),
        )
    except ActivityError as err:
        workflow.logger.warning(
            "Push notification to config %s of task %s not delivered: %s",
            delivery.config_id,
            delivery.task_id,
            err.cause or err,
        )


@workflow.defn(name="PushWorkflow")
class PushWorkflow:
    """Delivers the notification of a config set on a task whose workflow had already closed."""

    @workflow.run
    async def run(self, input: PushWorkflowInput) -> None:
        await deliver(input.delivery, input.policy)


class Notifications:
    """A task workflow's push notifications: the configs to notify, in the order they were set, and
    per config the statuses waiting for delivery, delivered one at a time, in order."""

    def __init__(self, task_id: str, context_id: str, configs: list[str], policy: PushPolicy):
        self._task_id = task_id
        self._context_id = context_id
        self._policy = policy
        self.configs: dict[str, None] = dict.fromkeys(configs)
        self._queues: dict[str, list[StatusRecord]] = {}
        # The running sender of each queue (held so that it is not garbage-collected mid-delivery).
        self._senders: dict[str, asyncio.Task[None]] = {}

    @property
    def idle(self) -> bool:
        """No notification waits: the workflow may end (or continue as new)."""
        return not self._queues

    def add(self, config_id: str) -> bool:
        """Notify `config_id` from now on; False when it was known already."""
        known = config_id in self.configs
        self.configs[config_id] = None
        return not known

    def remove(self, config_id: str) -> None:
        self.configs.pop(config_id, None)

    def notify(self, status: StatusRecord, config_id: str | None = None) -> None:
        """Queue `status` for `config_id`, or for every config."""
        for config in [config_id] if config_id is not None else list(self.configs):
            queue = self._queues.get(config)
            if queue is not None:
                queue.append(status)
                continue
            self._queues[config] = [status]
            self._senders[config] = asyncio.create_task(self._drain(config))

    async def _drain(self, config_id: str) -> None:
        """The queue goes away when it is empty, whatever happens: the workflow ends only once every
        queue has."""
        queue = self._queues[config_id]
        try:
            while queue:
                if config_id in self.configs:
                    delivery = PushDeliveryInput(
                        task_id=self._task_id,
                        context_id=self._context_id,
                        status=queue[0],
                        config_id=config_id,
                    )
                    await deliver(delivery, self._policy)
                queue.pop(0)
        finally:
            del self._queues[config_id]
            del self._senders[config_id]
