"""Reads tasks from Redis: snapshots (the fast path of tasks/get; the workflow stays the source of truth)
and each task's event log."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.hub import LogEntry
from gateway.pipelined import PipelinedReader, PipelineError
from protocol import (
    TERMINAL_STATES,
    Task,
    message_task_key,
    task_events_key,
    task_owner_key,
    task_snapshot_key,
)

logger = logging.getLogger(__name__)

# A terminal task never changes again, so each gateway keeps the last ones it read: at most this
# many, each for this long (well under any retention, so a task the workflow has forgotten is soon
# forgotten here too).
TERMINAL_CACHE_SIZE = 10_000
TERMINAL_CACHE_SECONDS = 60.0
_TERMINAL_STATE_VALUES = frozenset(state.value for state in TERMINAL_STATES)

# The internal type of a snapshot handed to readers in place of log entries (never in the log itself).
SNAPSHOT = "task.snapshot"

# KEYS: snapshot, stream. ARGV: position ("" for the snapshot), page size. Entries are
# [id, ["type", <type>, "event", <json>]]; the log starts with task.created unless it was trimmed.
_READ_AFTER = """
local function older(a, b)
  local am, as = string.match(a, "^(%d+)-?(%d*)$")
  local bm, bs = string.match(b, "^(%d+)-?(%d*)$")
  am, bm = tonumber(am), tonumber(bm)
  if am ~= bm then return am < bm end
  return (tonumber(as) or 0) < (tonumber(bs) or 0)
end
local position = ARGV[1]
local from_snapshot = position == ""
if not from_snapshot then
  local first = redis.call("XRANGE", KEYS[2], "-", "+", "COUNT", 1)[1]
  from_snapshot = first ~= nil and first[2][2] ~= "task.created" and older(position, first[1])
end
if from_snapshot then
  local newest = redis.call("XREVRANGE", KEYS[2], "+", "-", "COUNT", 1)[1]
  return {"snapshot", redis.call("GET", KEYS[1]), newest and newest[1] or "0"}
end
local entries = redis.call("XRANGE", KEYS[2], "(" .. position, "+", "COUNT", ARGV[2])
if #entries == 0 then
  return {"entries", entries, redis.call("GET", KEYS[1])}
end
return {"entries", entries}
"""


class TaskStore:
    def __init__(
        self,
        redis: Redis,
        *,
        ttl_seconds: int,
        timeout: float,
        reader: PipelinedReader | None = None,
    ) -> None:
        """`reader`, when given, serves the snapshot reads in place of `redis`."""
        self._redis = redis
        self._reader = reader
        self._ttl = ttl_seconds
        self._timeout = timeout
        self._read_script = redis.register_script(_READ_AFTER)
        # task id -> (monotonic expiry, wire form), oldest first.
        self._terminal: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()

    async def get(self, task_id: str) -> Task | None:
        """The cached Task, or None when Redis has none (expired, flushed, unreachable)."""
        wire = await self.get_wire(task_id)
        if wire is None:
            return None
        try:
            return Task.model_validate(wire)
        except ValidationError:
            logger.exception("Unreadable snapshot for task %s; asking the workflow", task_id)
            return None

    async def get_wire(self, task_id: str) -> dict[str, Any] | None:
        """The cached Task as the worker wrote it (`Task.to_wire()`), or None when Redis has none or
        what it has is not a JSON object. Shared with later callers when terminal: not to be changed."""
        cached = self._terminal.get(task_id)
        if cached is not None:
            if cached[0] > time.monotonic():
                return cached[1]
            del self._terminal[task_id]
        key = task_snapshot_key(task_id)
        try:
            async with asyncio.timeout(self._timeout):
                raw = await (
                    self._redis.get(key) if self._reader is None else self._reader.get(key)
                )
        except (RedisError, PipelineError, TimeoutError) as err:
            logger.warning("Redis read of task %s failed, asking the workflow: %s", task_id, err)
            return None
        if raw is None:
            return None
        try:
            wire = orjson.loads(raw)
        except orjson.JSONDecodeError:
            wire = None
        if not isinstance(wire, dict):
            logger.error("Unreadable snapshot for task %s; asking the workflow", task_id)
            return None
        status = wire.get("status")
        if isinstance(status, dict) and status.get("state") in _TERMINAL_STATE_VALUES:
            self._terminal[task_id] = (time.monotonic() + TERMINAL_CACHE_SECONDS, wire)
            if len(self._terminal) > TERMINAL_CACHE_SIZE:
                self._terminal.popitem(last=False)
        return wire

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

    async def read_after(self, task_id: str, position: str | None, count: int) -> LogRead:
        """Up to `count` entries of the task's log after entry `position` ("0": from the start).

        When `position` is None, or older than the oldest entry the log still holds (the rest was trimmed
        by `MAXLEN` or expired), the answer is instead the task's snapshot, tagged with the id of the
        newest entry it reflects, so a reader can go on from there without a gap. When there is no entry
        after `position`, the answer carries the snapshot too: it tells whether the task is over.
        """
        async with asyncio.timeout(self._timeout):
            reply: Any = await self._read_script(
                keys=[task_snapshot_key(task_id), task_events_key(task_id)],
                args=["" if position is None else position, count],
            )
        if reply[0] == b"snapshot":
            current = _task_json(reply[1])
            newest = reply[2].decode()
            entries = [] if current is None else [snapshot_entry(newest, current)]
            return LogRead(entries, current, snapshot=True)
        entries = [
            LogEntry(entry_id.decode(), orjson.loads(fields[3])) for entry_id, fields in reply[1]
        ]
        return LogRead(entries, _task_json(reply[2]) if len(reply) > 2 else None)

    async def remember_stream_message(
        self, message_id: str, task_id: str, principal: str | None = None
    ) -> None:
        async with asyncio.timeout(self._timeout):
            await self._redis.set(message_task_key(message_id, principal), task_id, ex=self._ttl)

    async def set_owner(self, task_id: str, principal: str) -> None:
        async with asyncio.timeout(self._timeout):
            await self._redis.set(task_owner_key(task_id), principal, ex=self._ttl)

    async def owner(self, task_id: str) -> str | None:
        """The principal that created the task, or None when Redis does not know (the workflow does)."""
        async with asyncio.timeout(self._timeout):
            owner: Any = await self._redis.get(task_owner_key(task_id))
        return owner.decode() if isinstance(owner, bytes) else owner

    async def stream_message_task(
        self, message_id: str, principal: str | None = None
    ) -> str | None:
        """The task a `message/stream` request with this message id started, if it is remembered."""
        async with asyncio.timeout(self._timeout):
            task_id: Any = await self._redis.get(message_task_key(message_id, principal))
        return task_id.decode() if task_id is not None else None


@dataclass(frozen=True, slots=True)
class LogRead:
    entries: list[LogEntry]
    # The snapshot, when the read returned it (as its entry, or because no entry came after the position).
    current: dict[str, Any] | None
    snapshot: bool = False


def snapshot_entry(entry_id: str, task: dict[str, Any]) -> LogEntry:
    """The whole task as of entry `entry_id`, for readers that start from it instead of the log."""
    return LogEntry(entry_id, {"type": SNAPSHOT, "taskId": task["id"], "task": task}, snapshot=True)


def _task_json(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    task: dict[str, Any] = orjson.loads(raw)
    return task
