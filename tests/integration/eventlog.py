"""Reading a task's event log (its Redis stream) in tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from redis.asyncio import Redis

from protocol import task_events_key


async def events(redis: Redis, task_id: str) -> list[dict[str, Any]]:
    entries: Any = await redis.xrange(task_events_key(task_id))
    return [orjson.loads(fields[b"event"]) for _, fields in entries]


async def log_entries(redis: Redis, task_id: str) -> list[tuple[str, dict[str, Any]]]:
    entries: Any = await redis.xrange(task_events_key(task_id))
    return [(entry_id.decode(), orjson.loads(fields[b"event"])) for entry_id, fields in entries]


async def read_until(
    redis: Redis,
    task_id: str,
    done: Callable[[list[dict[str, Any]]], bool],
    deadline_seconds: float = 60,
) -> list[dict[str, Any]]:
    """Block on the task's stream until the events read so far satisfy `done`; return them."""
    seen: list[dict[str, Any]] = []
    last = "0"
    async with asyncio.timeout(deadline_seconds):
        while not done(seen):
            reply: Any = await redis.xread({task_events_key(task_id): last}, block=1000)
            for _, entries in reply:
                for entry_id, fields in entries:
                    last = entry_id
                    seen.append(orjson.loads(fields[b"event"]))
    return seen


def count(event_type: str, at_least: int = 1) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda seen: sum(e["type"] == event_type for e in seen) >= at_least


def final(seen: list[dict[str, Any]]) -> bool:
    return bool(seen) and seen[-1]["type"] == "task.completed"
