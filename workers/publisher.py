"""Writes task events to Redis: one atomic step per event (stream entry, snapshot, wake-up)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from protocol import (
    TERMINAL_STATES,
    Message,
    Task,
    TaskEvent,
    TaskState,
    TaskStatus,
    context_tasks_key,
    task_channel,
    task_events_key,
    task_push_key,
    task_snapshot_key,
)
from protocol.keys import (
    owner_context_tasks_key,
    owner_state_tasks_key,
    owner_tasks_key,
    task_ended_key,
    task_published_key,
)
from workers.metrics import WorkerMetrics

logger = logging.getLogger(__name__)

# Events larger than this are announced by entry id alone; subscribers read them from the stream.
WAKE_PAYLOAD_LIMIT = 256 * 1024

# KEYS: snapshot, stream, push configs (kept as long as the log), ended marker, recent publishes.
# ARGV: channel, event type, event JSON, snapshot JSON, stream max length, TTL seconds, "1" to write
# only when no snapshot exists yet (task.created on a retried first turn), wake-up payload limit, "1"
# when the event ends the task (a terminal state), the publish command (SPUBLISH on a Redis Cluster:
# the channel shares the task's slot, and only the node serving it carries the message), the
# publish's token (TOKEN_CHARS), how many recent publishes to remember and for how long.
# A publish whose token a recent one had was written then (only its reply was lost, and the worker or
# the cluster client sent it again): that entry's id is returned and nothing written twice, even with
# other writers' entries after it. The recent publishes are a list of token, entry id pairs, newest
# first (LPOS finds a token in C, where a scan in Lua cost a third of the script). Nothing is written
# once the task has ended: it ends once whoever ends it (the turn, a cancel's fast path, the
# workflow), and an abandoned attempt adds nothing after.
# The entry's `type` field comes first: the gateway reads it to tell whether the stream still starts
# at task.created or has been trimmed.
_PUBLISH = """
local sent = redis.call("LPOS", KEYS[5], ARGV[11])
if sent then
  local id = redis.call("LINDEX", KEYS[5], sent + 1)
  if id then
    return id
  end
end
if ARGV[7] == "1" and redis.call("EXISTS", KEYS[1]) == 1 then
  return false
end
if redis.call("EXISTS", KEYS[4]) == 1 then
  return false
end
if ARGV[9] == "1" then
  redis.call("SET", KEYS[4], "1", "EX", ARGV[6])
end
local id = redis.call("XADD", KEYS[2], "MAXLEN", "~", ARGV[5], "*", "type", ARGV[2], "event", ARGV[3])
redis.call("SET", KEYS[1], ARGV[4], "EX", ARGV[6])
redis.call("EXPIRE", KEYS[2], ARGV[6])
redis.call("EXPIRE", KEYS[3], ARGV[6])
redis.call("LPUSH", KEYS[5], id, ARGV[11])
redis.call("LTRIM", KEYS[5], 0, 2 * ARGV[12] - 1)
redis.call("EXPIRE", KEYS[5], ARGV[13])
if #ARGV[3] <= tonumber(ARGV[8]) then
  redis.call(ARGV[10], ARGV[1], id .. " " .. ARGV[3])
else
  redis.call(ARGV[10], ARGV[1], id)
end
return id
"""
# A publish's token: random hex, written with the entry id in the task's recent publishes.
TOKEN_CHARS = 16
# How many of a task's publishes, and for how long, a publish sent again is checked against: it is
# sent again within seconds (RECONNECT_PAUSES, or the cluster client's own retries), and other
# writers (a cancel's fast path, the workflow ending the task, an abandoned attempt) add few entries
# meanwhile.
RECENT_PUBLISHES = 16
RECENT_PUBLISH_SECONDS = 60

# A write whose connection failed (Redis restarted, failed over, or the connection dropped) is sent
# again after these pauses, then the error is raised: a turn rides over a Redis restart of a few
# seconds instead of failing its attempt, whose retry would find the task's content gone with an
# emptied Redis.
RECONNECT_PAUSES = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)

# The events that change a task's status, and so its place in its owner's index.
_INDEXED_EVENTS = frozenset({"task.created", "task.status", "task.completed"})

# KEYS (one owner's, one slot): every task, the task's context, the task's state, then every other
# state. ARGV: task id, score (status time, epoch ms), retention cutoff (epoch ms), TTL seconds.
# Members scored before the cutoff are gone from Redis's snapshots too, so each write trims them.
_INDEX = """
for i, key in ipairs(KEYS) do
  if i <= 3 then
    redis.call("ZADD", key, ARGV[2], ARGV[1])
  else
    redis.call("ZREM", key, ARGV[1])
  end
  redis.call("ZREMRANGEBYSCORE", key, "-inf", "(" .. ARGV[3])
  redis.call("EXPIRE", key, ARGV[4])
end
return true
"""


class TaskEndedError(Exception):
    """The task has ended (its log holds its final event): nothing more is written to it."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task '{task_id}' has ended")
        self.task_id = task_id


class EventPublisher:
    def __init__(
        self,
        redis: Redis,
        *,
        stream_max_length: int,
        ttl_seconds: int,
        metrics: WorkerMetrics | None = None,
        sharded: bool = False,
    ) -> None:
        """`sharded`: wake subscribers with sharded pub/sub (a Redis Cluster's gateways subscribe so)."""
        self._redis = redis
        self._publish = "SPUBLISH" if sharded else "PUBLISH"
        self._script = redis.register_script(_PUBLISH)
        self._index_script = redis.register_script(_INDEX)
        self._max_length = stream_max_length
        self.ttl_seconds = ttl_seconds
        self._metrics = metrics if metrics is not None else WorkerMetrics.noop()

    async def publish(
        self,
        event: TaskEvent,
        snapshot: Task,
        *,
        only_if_new: bool = False,
        owner: str | None = None,
    ) -> str | None:
        """Append `event` to the task's stream, store `snapshot` and wake subscribers; when the event
        sets the status, file the task under its status in `owner`'s index (`index`).

        Returns the stream entry id, or None when `only_if_new` and the task already had a snapshot,
        or when the task has ended already (`ended_status` says how).
        """
        ends = event.type == "task.completed" and snapshot.status.state in TERMINAL_STATES
        keys = [
            task_snapshot_key(snapshot.id),
            task_events_key(snapshot.id),
            task_push_key(snapshot.id),
            task_ended_key(snapshot.id),
            task_published_key(snapshot.id),
        ]
        args: list[bytes | str | int] = [
            task_channel(snapshot.id),
            event.type,
            orjson.dumps(event.to_wire()),
            orjson.dumps(snapshot.to_wire()),
            self._max_length,
            self.ttl_seconds,
            "1" if only_if_new else "0",
            WAKE_PAYLOAD_LIMIT,
            "1" if ends else "0",
            self._publish,
            f"{random.getrandbits(TOKEN_CHARS * 4):0{TOKEN_CHARS}x}",
            RECENT_PUBLISHES,
            RECENT_PUBLISH_SECONDS,
        ]
        entry_id: Any = await _sent_again_on_reconnect(
            lambda: self._script(keys=keys, args=args), f"Publish to task {snapshot.id}"
        )
        if entry_id is None:
            return None
        if event.type in _INDEXED_EVENTS:
            await self.index(snapshot, owner)
        self._metrics.event_published(event.type, snapshot.status.state)
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def ended_status(self, task_id: str) -> TaskStatus | None:
        """The status the task's snapshot holds (None: Redis has none)."""
        raw: Any = await self._redis.get(task_snapshot_key(task_id))
        return None if raw is None else Task.model_validate_json(raw).status

    async def index(self, task: Task, owner: str | None = None) -> None:
        """File `task` in `owner`'s task index under its current state and context, scored by its
        status time; one script on the owner's slot, which also trims what the retention dropped."""
        state = task.status.state.value
        others = [owner_state_tasks_key(s.value, owner) for s in TaskState if s.value != state]
        now_ms = int(time.time() * 1000)
        keys = [
            owner_tasks_key(owner),
            owner_context_tasks_key(task.contextId, owner),
            owner_state_tasks_key(state, owner),
            *others,
        ]
        args: list[str | int] = [
            task.id,
            status_millis(task.status.timestamp),
            now_ms - self.ttl_seconds * 1000,
            self.ttl_seconds,
        ]
        await _sent_again_on_reconnect(
            lambda: self._index_script(keys=keys, args=args), f"Index of task {task.id}"
        )

    async def join_context(self, task: Task, owner: str | None = None) -> None:
        """List a new task under its owner's context, for later tasks of the context to read."""
        key = context_tasks_key(task.contextId, owner)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.rpush(key, task.id)
            pipe.expire(key, self.ttl_seconds)
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
        # One GET each, pipelined: the snapshots lie in their tasks' slots, which MGET may not span
        # in a Redis Cluster (its pipeline sends each GET to the node that holds it).
        async with self._redis.pipeline(transaction=False) as pipe:
            for task_id in earlier:
                pipe.get(task_snapshot_key(task_id))
            snapshots: list[Any] = await pipe.execute()
        messages = [
            message
            for raw in snapshots
            if raw is not None
            for message in Task.model_validate_json(raw).history or []
        ]
        return messages[-limit:]


async def _sent_again_on_reconnect(send: Callable[[], Awaitable[Any]], what: str) -> Any:
    """`send()`'s result, sent again after each RECONNECT_PAUSES pause while its connection fails."""
    for pause in RECONNECT_PAUSES:
        try:
            return await send()
        except RedisConnectionError as err:
            logger.warning("%s failed, sending it again in %g s: %s", what, pause, err)
        await asyncio.sleep(pause)
    return await send()


def status_millis(stamp: str | None) -> int:
    """A `TaskStatus.timestamp` (ISO 8601; UTC when it names no zone) in epoch milliseconds; now when
    there is none or it does not parse."""
    if stamp:
        try:
            moment = datetime.fromisoformat(stamp)
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return round(moment.timestamp() * 1000)
    return int(time.time() * 1000)
