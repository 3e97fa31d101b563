"""Reads task snapshots from Redis: the fast path of tasks/get. The workflow stays the source of truth."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from protocol import Task, task_events_key, task_snapshot_key

logger = logging.getLogger(__name__)


class TaskStore:
    def __init__(self, redis: Redis, *, ttl_seconds: int, timeout: float) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._timeout = timeout

    async def get(self, task_id: str) -> Task | None:
        """The cached Task, or None when Redis has none (expired, flushed, unreachable)."""
        try:
            async with asyncio.timeout(self._timeout):
                raw = await self._redis.get(task_snapshot_key(task_id))
        except (RedisError, TimeoutError) as err:
            logger.warning("Redis read of task %s failed, asking the workflow: %s", task_id, err)
            return None
        if raw is None:
            return None
        try:
            return Task.model_validate(orjson.loads(raw))
        except (orjson.JSONDecodeError, ValidationError):
            logger.exception("Unreadable snapshot for task %s; asking the workflow", task_id)
            return None

    async def refill(self, task: Task) -> None:
        """Cache a Task read from the workflow. NX: a newer snapshot written meanwhile by a worker wins."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.set(
                    task_snapshot_key(task.id), orjson.dumps(task.to_wire()), ex=self._ttl, nx=True
                )
        except (RedisError, TimeoutError) as err:
            logger.warning("Could not cache task %s in Redis: %s", task.id, err)

    async def last_event_id(self, task_id: str) -> str | None:
        """The id of the newest entry in the task's log ("0" if none), or None if Redis cannot say."""
        try:
            async with asyncio.timeout(self._timeout):
                entries: Any = await self._redis.xrevrange(task_events_key(task_id), count=1)
        except (RedisError, TimeoutError) as err:
            logger.warning("Redis read of task %s's log failed: %s", task_id, err)
            return None
        return entries[0][0].decode() if entries else "0"

    async def wait_final(self, task_id: str, after: str) -> Task:
        """Block until the task's log holds a `task.completed` event after entry `after`: its Task."""
        last = after
        while True:
            reply: Any = await self._redis.xread({task_events_key(task_id): last}, block=5000)
            for _, entries in reply or []:
                for entry_id, fields in entries:
                    last = entry_id
                    event = orjson.loads(fields[b"event"])
                    if event["type"] == "task.completed":
                        return Task.model_validate(event["task"])
