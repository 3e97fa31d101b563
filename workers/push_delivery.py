"""The `deliver_push` activity: one notification to one webhook, as Temporal retries it."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import orjson
from redis.asyncio import Redis
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from config.telemetry import annotate_task
from content import ContentStore
from protocol import (
    PROTOCOL_VERSION,
    StoredPushConfig,
    Task,
    TaskStatus,
    task_push_key,
    task_snapshot_key,
)
from protocol.v1 import task_to_v1
from workers.metrics import WorkerMetrics
from workers.webhook_sender import DeliveryOutcome, WebhookSender
from workflows.payloads import PushDeliveryInput
from workflows.push_workflow import DELIVER_PUSH, PUSH_REFUSED, PUSH_REJECTED

logger = logging.getLogger(__name__)


class PushActivities:
    def __init__(
        self,
        redis: Redis,
        contents: ContentStore,
        sender: WebhookSender,
        *,
        timeout: float = 10.0,
        outcomes: Counter[str] | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self._redis = redis
        self._contents = contents
        self._sender = sender
        self._timeout = timeout
        # Outcomes of every attempt by this worker: delivered, retry, rejected, refused, deleted.
        self.outcomes: Counter[str] = Counter() if outcomes is None else outcomes
        self._metrics = metrics if metrics is not None else WorkerMetrics.noop()

    @activity.defn(name=DELIVER_PUSH)
    async def deliver_push(self, input: PushDeliveryInput) -> str:
        """POST the Task to the config's URL. Raises a retryable error for what may pass (5xx, 408,
        429, network), a final one for what will not (other 4xx, redirects, refused addresses)."""
        task_id = input.task_id
        annotate_task(task_id, input.context_id)
        info = activity.info()
        async with asyncio.timeout(self._timeout):
            raw_config, raw_task = await self._read(task_id, input.config_id)
            if raw_config is None:
                self._record("deleted", task_id, input.config_id, info.attempt, "config deleted")
                return "deleted"
            status = await self._contents.status(task_id, input.context_id, input.status)
        stored = StoredPushConfig.model_validate_json(raw_config)
        body = notification_body(input, status, raw_task, stored.version)
        result = await self._sender.send(stored.config, body)
        self._record(result.outcome.value, task_id, input.config_id, info.attempt, result.detail)
        if result.outcome is DeliveryOutcome.DELIVERED:
            return str(result.outcome.value)
        # Benign: the line `_record` wrote says it all; Temporal's worker logs no traceback for it.
        if result.outcome is DeliveryOutcome.RETRY:
            raise ApplicationError(
                f"Webhook not reached: {result.detail}", category=ApplicationErrorCategory.BENIGN
            )
        error_type = PUSH_REFUSED if result.outcome is DeliveryOutcome.REFUSED else PUSH_REJECTED
        raise ApplicationError(
            f"Webhook delivery stopped: {result.detail}",
            type=error_type,
            non_retryable=True,
            category=ApplicationErrorCategory.BENIGN,
        )

    async def _read(self, task_id: str, config_id: str) -> tuple[Any, Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(task_push_key(task_id), config_id)
            pipe.get(task_snapshot_key(task_id))
            config, task = await pipe.execute()
        return config, task

    def _record(
        self, outcome: str, task_id: str, config_id: str, attempt: int, detail: str
    ) -> None:
        self.outcomes[outcome] += 1
        self._metrics.push_attempted(outcome)
        logger.info(
            "push %s: task %s config %s attempt %d: %s",
            outcome,
            task_id,
            config_id,
            attempt,
            detail,
        )


def notification_body(
    input: PushDeliveryInput,
    status: TaskStatus,
    snapshot: bytes | None,
    version: str = PROTOCOL_VERSION,
) -> bytes:
    """The task's snapshot with the notified status: the snapshot as it is when the notification
    goes out at once, and the task as far as Redis knows it when a retry finds it moved on. Without a
    snapshot (Redis lost it), the task's ids and the status. In `version`'s shape: the Task itself
    for 0.2.5 and 0.3, a `StreamResponse` carrying it for 1.0 (spec §4.3.3)."""
    if snapshot is None:
        task = Task(id=input.task_id, contextId=input.context_id, status=status)
    else:
        task = Task.model_validate_json(snapshot).model_copy(update={"status": status})
    if version.startswith("1."):
        return orjson.dumps({"task": task_to_v1(task.to_wire())})
    return orjson.dumps(task.to_wire())
