"""Writes task events to Redis: one atomic step per event (stream entry, snapshot, wake-up)."""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis

from protocol import Task, TaskEvent, task_channel, task_events_key, task_snapshot_key

# Events larger than this are announced by entry id alone; subscribers read them from the stream.
WAKE_PAYLOAD_LIMIT = 256 * 1024

# KEYS: snapshot, stream. ARGV: channel, event type, event JSON, snapshot JSON, stream max length,
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
if #ARGV[3] <= tonumber(ARGV[8]) then
  redis.call("PUBLISH", ARGV[1], id .. " " .. ARGV[3])
else
  redis.call("PUBLISH", ARGV[1], id)
end
return id
"""


class EventPublisher:
    def __init__(self, redis: Redis, *, stream_max_length: int, ttl_seconds: int) -> None:
        self._redis = redis
        self._script = redis.register_script(_PUBLISH)
        self._max_length = stream_max_length
        self._ttl = ttl_seconds

    async def publish(
        self, event: TaskEvent, snapshot: Task, *, only_if_new: bool = False
    ) -> str | None:
        """Append `event` to the task's stream, store `snapshot` and wake subscribers.

        Returns the stream entry id, or None when `only_if_new` and the task already had a snapshot.
        """
        entry_id: Any = await self._script(
            keys=[task_snapshot_key(snapshot.id), task_events_key(snapshot.id)],
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
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
