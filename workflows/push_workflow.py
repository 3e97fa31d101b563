"""Push notification delivery, as the task workflow and `PushWorkflow` run it: one `deliver_push`
activity per notification and config, retried with backoff by Temporal. Deterministic code only."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
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
