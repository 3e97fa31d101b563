"""Writes task events to Redis: one atomic step per event (stream entry, snapshot, wake-up)."""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis

from protocol import (
    Message,
    Task,
    TaskEvent,
    context_tasks_key,
    task_channel,
    task_events_key,
    task_push_key,
    task_snapshot_key,
)
from workers.metrics import WorkerMetrics

# Events larger than this are announced by entry id alone; subscribers read them from the stream.
WAKE_PAYLOAD_LIMIT = 256 * 1024

# KEYS: snapshot, stream, push configs (kept as long as the log). ARGV: channel, event type, event JSON, snapshot JSON, stream max length,
# TTL seconds, "1" to write only when no snapshot exists yet (task.created on a retried first turn),
# wake-up payload limit. The entry's `type` field comes first: the gateway reads it to tell whether
# the stream still starts at task.created or has been trimmed.
_PUBLISH = """
if ARGV[7] == "1" and redis.call("EXISTS", KEYS[1]) == 1 then
  return false
end
local id = redis.call("XADD", KEYS[2], "MAXLEN", "~", ARGV[5], "*", "type", ARGV[2], "event", ARGV[3])
redis.call("SET", KEYS[1], ARGV[4], "EX", ARGV[6])
redis.call("EXPIRE", KEYS[2], ARGV[6])
redis.call("EXPIRE", KEYS[3], ARGV[6])
if #ARGV[3] <= tonumber(ARGV[8]) then
  redis.call("PUBLISH", ARGV[1], id .. " " .. ARGV[3])
else
  redis.call("PUBLISH", ARGV[1], id)
end
return id
"""


class EventPublisher:
    def __init__(
        self,
        redis: Redis,
        *,
        stream_max_length: int,
        ttl_seconds: int,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self._redis = redis
        self._script = redis.register_script(_PUBLISH)
        self._max_length = stream_max_length
        self._ttl = ttl_seconds
        self._metrics = metrics if metrics is not None else WorkerMetrics.noop()

    async def publish(
        self, event: TaskEvent, snapshot: Task, *, only_if_new: bool = False
    ) -> str | None:
        """Append `event` to the task's stream, store `snapshot` and wake subscribers.

        Returns the stream entry id, or None when `only_if_new` and the task already had a snapshot.
        """
        entry_id: Any = await self._script(
            keys=[
                task_snapshot_key(snapshot.id),
                task_events_key(snapshot.id),
                task_push_key(snapshot.id),
            ],
            args=[
                task_channel(snapshot.id),
                event.type,
                orjson.dumps(event.to_wire()),
                orjson.dumps(snapshot.to_wire()),
                self._max_length,
                self._ttl,
                "1" if only_if_new else "0",
                WAKE_PAYLOAD_LIMIT,
            ],
        )
        if entry_id is None:
            return None
        self._metrics.event_published(event.type, snapshot.status.state)
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def join_context(self, task: Task, owner: str | None = None) -> None:
        """List a new task under its owner's context, for later tasks of the context to read."""
        key = context_tasks_key(task.contextId, owner)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.rpush(key, task.id)
            pipe.expire(key, self._ttl)
            await pipe.execute()

    async def context_history(
        self, task: Task, limit: int, owner: str | None = None
    ) -> list[Message]:
        """The last `limit` messages of the tasks that came before `task` in its owner's context,
        oldest first (what Redis still holds of them)."""
        if limit <= 0:
            return []
        ids: Any = await self._redis.lrange(context_tasks_key(task.contextId, owner), 0, -1)
        earlier = [i.decode() for i in ids]
        earlier = earlier[: earlier.index(task.id)] if task.id in earlier else earlier
        if not earlier:
            return []
        snapshots: Any = await self._redis.mget([task_snapshot_key(i) for i in earlier])
        messages = [
            message
            for raw in snapshots
            if raw is not None
            for message in Task.model_validate_json(raw).history or []
        ]
        return messages[-limit:]
