"""The `deliver_push` activity: one notification to one webhook, as Temporal retries it."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import orjson
from redis.asyncio import Redis
from temporalio import activity
from temporalio.exceptions import ApplicationError

from protocol import StoredPushConfig, task_push_key
from workers.push import DeliveryOutcome, WebhookSender
from workflows import DELIVER_PUSH, PUSH_REFUSED, PUSH_REJECTED, PushDeliveryInput

logger = logging.getLogger(__name__)


class PushActivities:
    def __init__(
        self,
        redis: Redis,
        sender: WebhookSender,
        *,
        timeout: float = 10.0,
        outcomes: Counter[str] | None = None,
    ) -> None:
        self._redis = redis
        self._sender = sender
        self._timeout = timeout
        # Outcomes of every attempt by this worker: delivered, retry, rejected, refused, deleted.
        self.outcomes: Counter[str] = Counter() if outcomes is None else outcomes

    @activity.defn(name=DELIVER_PUSH)
    async def deliver_push(self, input: PushDeliveryInput) -> str:
        """POST the Task to the config's URL. Raises a retryable error for what may pass (5xx, 408,
        429, network), a final one for what will not (other 4xx, redirects, refused addresses)."""
        task_id = input.task.id
        info = activity.info()
        async with asyncio.timeout(self._timeout):
            raw = await self._redis.hget(task_push_key(task_id), input.config_id)
        if raw is None:
            self._record("deleted", task_id, input.config_id, info.attempt, "config deleted")
            return "deleted"
        config = StoredPushConfig.model_validate_json(raw).config
        body = orjson.dumps(input.task.to_wire())
        result = await self._sender.send(config, body)
        self._record(result.outcome.value, task_id, input.config_id, info.attempt, result.detail)
        if result.outcome is DeliveryOutcome.DELIVERED:
            return str(result.outcome.value)
        if result.outcome is DeliveryOutcome.RETRY:
            raise ApplicationError(f"Webhook not reached: {result.detail}")
        error_type = PUSH_REFUSED if result.outcome is DeliveryOutcome.REFUSED else PUSH_REJECTED
        raise ApplicationError(
            f"Webhook delivery stopped: {result.detail}", type=error_type, non_retryable=True
        )

    def _record(
        self, outcome: str, task_id: str, config_id: str, attempt: int, detail: str
    ) -> None:
        self.outcomes[outcome] += 1
        logger.info(
            "push %s: task %s config %s attempt %d: %s",
            outcome,
            task_id,
            config_id,
            attempt,
            detail,
        )
