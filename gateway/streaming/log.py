"""Reads of a task's event log in Redis (ARCHITECTURE.md, "The event log"): the entries after a position,
or the task's snapshot where the log cannot start from there, and the newest entry's id.

Workers write the log (workers/publisher.py); the gateway only reads it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from config.redis_clients import REDIS_ERRORS
from protocol import InvalidParamsError, task_events_key, task_snapshot_key

logger = logging.getLogger(__name__)

# The internal type of a snapshot handed to readers in place of log entries (never in the log itself).
SNAPSHOT = "task.snapshot"
_ENTRY_ID = re.compile(r"^(0|\d{1,20}-\d{1,20})$")
# Each part of a stream entry id is a 64-bit unsigned integer in Redis.
_ENTRY_ID_PART_MAX = 2**64 - 1

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


def entry_key(entry_id: str) -> tuple[int, int]:
    """A stream entry id (`<ms>-<seq>`, or a bare `<ms>`) as a sortable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def parse_last_event_id(value: str | None) -> str | None:
    """A `Last-Event-ID` as a stream entry id, or None when absent. Raises -32602 when malformed."""
    if value is None or value == "":
        return None
    value = value.strip()
    if not _ENTRY_ID.match(value):
        raise InvalidParamsError(
            f"Last-Event-ID must be an event id this gateway sent (like 1700000000000-0), got {value!r}"
        )
    ms, seq = entry_key(value)
    if max(ms, seq) > _ENTRY_ID_PART_MAX:
        raise InvalidParamsError(
            f"Last-Event-ID must be an event id this gateway sent (like 1700000000000-0), got "
            f"{value!r}: each part is at most {_ENTRY_ID_PART_MAX}"
        )
    if ms == seq == _ENTRY_ID_PART_MAX:
        # Valid, but the last id there can be: Redis refuses to read "after" it.
        raise InvalidParamsError(
            f"Last-Event-ID must be an event id this gateway sent (like 1700000000000-0), got "
            f"{value!r}: no event can follow it"
        )
    return value


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One entry of a task's event log, or (`snapshot`) the task as of entry `id`."""

    id: str
    event: dict[str, Any]
    snapshot: bool = False

    @property
    def key(self) -> tuple[int, int]:
        return entry_key(self.id)


@dataclass(frozen=True, slots=True)
class LogRead:
    entries: list[LogEntry]
    # The snapshot, when the read returned it (as its entry, or because no entry came after the position).
    current: dict[str, Any] | None
    snapshot: bool = False


def snapshot_entry(entry_id: str, task: dict[str, Any]) -> LogEntry:
    """The whole task as of entry `entry_id`, for readers that start from it instead of the log."""
    return LogEntry(entry_id, {"type": SNAPSHOT, "taskId": task["id"], "task": task}, snapshot=True)


class EventLog:
    def __init__(self, redis: Redis, *, timeout: float) -> None:
        self._redis = redis
        self._timeout = timeout
        self._read_script = redis.register_script(_READ_AFTER)

    async def last_event_id(self, task_id: str) -> str | None:
        """The id of the newest entry in the task's log ("0" if none), or None if Redis cannot say."""
        try:
            async with asyncio.timeout(self._timeout):
                entries: Any = await self._redis.xrevrange(task_events_key(task_id), count=1)
        except (*REDIS_ERRORS, TimeoutError) as err:
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


def _task_json(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    task: dict[str, Any] = orjson.loads(raw)
    return task
