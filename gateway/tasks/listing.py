"""A caller's tasks, newest status first (A2A 1.0 `ListTasks`): read from the owner's task index in Redis
(sorted sets the workers keep, `protocol.keys.owner_tasks_key` and its siblings), the tasks themselves
from their snapshots.

Paging is by keyset: the opaque page token names the last task of the page (its score and id), and the
next page starts strictly after it in the index's order (score descending, then id descending, the
order Redis keeps members of equal score in), so tasks filed meanwhile neither shift nor repeat a page.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from config.redis_clients import REDIS_ERRORS
from protocol import InternalError, InvalidParamsError, TaskState, task_snapshot_key
from protocol.keys import owner_context_tasks_key, owner_state_tasks_key, owner_tasks_key

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100
# A token longer than this is no token of ours (one holds a score and a task id).
MAX_TOKEN_LENGTH = 1024
# Rounds of reading the index again when expired snapshots left a page short.
MAX_ROUNDS = 8
_STATES = frozenset(state.value for state in TaskState)
UNAVAILABLE = "Internal error: the task index (Redis) is unavailable; retry shortly"

# KEYS: the set to walk, then (optional) a set a member must also be in. ARGV: the lowest score to
# include (a ZRANGE bound: "-inf" or "(<ms>"), the cursor's score and id ("" and "": from the top), how
# many members to return. Returns {total, more, id, score, id, score...}: how many members match the
# score bound and the second set, whether more follow the ones returned, and the members after the
# cursor, newest first. Ids compare byte by byte, as Redis orders equal scores (Lua's `<` follows the
# server's locale).
_PAGE = """
local key, also, low = KEYS[1], KEYS[2], ARGV[1]
local cursor_score, cursor_id, count = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local function before(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local total
if also then
  total = 0
  for _, m in ipairs(redis.call("ZRANGE", key, "+inf", low, "BYSCORE", "REV")) do
    if redis.call("ZSCORE", also, m) then total = total + 1 end
  end
else
  total = redis.call("ZCOUNT", key, low, "+inf")
end
local rank = 0
if cursor_score then
  local held = redis.call("ZSCORE", key, cursor_id)
  if held and tonumber(held) == cursor_score then
    rank = redis.call("ZREVRANK", key, cursor_id) + 1
  else
    rank = redis.call("ZCOUNT", key, "(" .. ARGV[2], "+inf")
  end
end
local floor = nil
if low ~= "-inf" then floor = tonumber(string.sub(low, 2)) end
local out, batch = {}, count + 1
while true do
  local chunk = redis.call("ZRANGE", key, rank, rank + batch - 1, "REV", "WITHSCORES")
  if #chunk == 0 then return {total, 0, unpack(out)} end
  for i = 1, #chunk, 2 do
    local m, s = chunk[i], tonumber(chunk[i + 1])
    if floor and s <= floor then return {total, 0, unpack(out)} end
    local after = not cursor_score or s < cursor_score or before(m, cursor_id)
    if after and (not also or redis.call("ZSCORE", also, m)) then
      if #out >= 2 * count then return {total, 1, unpack(out)} end
      out[#out + 1] = m
      out[#out + 1] = chunk[i + 1]
    end
  end
  rank = rank + batch
end
"""


@dataclass(frozen=True)
class ListQuery:
    context_id: str | None = None
    state: str | None = None  # internal 0.2.5 state value, e.g. "working"
    status_after_ms: int | None = None  # strictly after
    page_size: int = 50  # 1..100, caller validated
    page_token: str | None = None


@dataclass(frozen=True)
class ListPage:
    tasks: list[
        dict[str, Any]
    ]  # snapshot wire dicts (0.2.5 Task JSON as stored at task_snapshot_key)
    next_page_token: str  # "" on the last page
    total_size: int  # all matches of the filters (not only this page)


@dataclass(frozen=True)
class _Cursor:
    score: int
    task_id: str


def encode_token(score: int, task_id: str) -> str:
    """The page token that continues after the task `task_id` scored `score`."""
    raw = orjson.dumps({"s": score, "i": task_id})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> _Cursor:
    """The cursor a token of `encode_token` names; InvalidParamsError for anything else."""
    try:
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError("too long")
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        cursor = orjson.loads(raw)
    except ValueError as err:  # binascii.Error and orjson.JSONDecodeError among them
        raise InvalidParamsError(
            "Invalid parameters: pageToken is not a token of this server"
        ) from err
    score, task_id = (
        (cursor.get("s"), cursor.get("i")) if isinstance(cursor, dict) else (None, None)
    )
    if type(score) is not int or not isinstance(task_id, str) or not task_id or score < 0:
        raise InvalidParamsError("Invalid parameters: pageToken is not a token of this server")
    return _Cursor(score, task_id)


class TaskIndex:
    """Lists an owner's tasks from the index the workers keep (`EventPublisher.index`)."""

    def __init__(self, redis: Redis, *, timeout: float) -> None:
        self._redis = redis
        self._timeout = timeout
        self._page = redis.register_script(_PAGE)

    async def list(self, owner: str | None, query: ListQuery) -> ListPage:
        """One page of `owner`'s tasks matching `query`, newest status first.

        InvalidParamsError for a page token this server did not make or a page size out of range;
        InternalError when Redis does not answer within the timeout."""
        if not 1 <= query.page_size <= MAX_PAGE_SIZE:
            raise InvalidParamsError(
                f"Invalid parameters: pageSize must be between 1 and {MAX_PAGE_SIZE}"
            )
        if query.state is not None and query.state not in _STATES:
            return ListPage(tasks=[], next_page_token="", total_size=0)
        cursor = decode_token(query.page_token) if query.page_token else None
        try:
            async with asyncio.timeout(self._timeout):
                return await self._list(owner, query, cursor)
        except (*REDIS_ERRORS, TimeoutError) as err:
            logger.warning("Listing tasks failed: %r", err)
            raise InternalError(UNAVAILABLE) from err

    async def _list(self, owner: str | None, query: ListQuery, cursor: _Cursor | None) -> ListPage:
        keys = _keys(owner, query)
        low = "-inf" if query.status_after_ms is None else f"({query.status_after_ms}"
        tasks: list[dict[str, Any]] = []
        total, more, last = 0, False, cursor
        for _ in range(MAX_ROUNDS):
            needed = query.page_size - len(tasks)
            args = [low, last.score, last.task_id] if last else [low, "", ""]
            reply: Any = await self._page(keys=keys, args=[*args, needed])
            total, more = int(reply[0]), bool(reply[1])
            members = [
                _Cursor(int(float(reply[i + 1])), reply[i].decode())
                for i in range(2, len(reply), 2)
            ]
            found, gone = await _snapshots(self._redis, members, query.state)
            tasks += found
            total -= len(gone)
            if gone:
                await _forget(self._redis, owner, query.context_id, gone)
            if members:
                last = members[-1]
            if len(tasks) >= query.page_size or not more:
                break
        token = encode_token(last.score, last.task_id) if more and last else ""
        return ListPage(tasks=tasks, next_page_token=token, total_size=max(total, len(tasks)))


async def _snapshots(
    redis: Redis, members: list[_Cursor], state: str | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """The snapshots of `members` in one round trip (their keys are in as many slots), those in
    `state` when given; and the ids whose snapshot Redis no longer has."""
    if not members:
        return [], []
    async with redis.pipeline(transaction=False) as pipe:
        for member in members:
            pipe.get(task_snapshot_key(member.task_id))
        raws: list[bytes | None] = await pipe.execute()
    found: list[dict[str, Any]] = []
    gone: list[str] = []
    for member, raw in zip(members, raws, strict=True):
        if raw is None:
            gone.append(member.task_id)
            continue
        try:
            wire = orjson.loads(raw)
        except orjson.JSONDecodeError:
            wire = None
        if not isinstance(wire, dict):
            logger.error("Unreadable snapshot for task %s; left out of the list", member.task_id)
            continue
        # The snapshot is written before the index: it may already be in a later state.
        if state is None or (wire.get("status") or {}).get("state") == state:
            found.append(wire)
    return found, gone


async def _forget(
    redis: Redis, owner: str | None, context_id: str | None, task_ids: list[str]
) -> None:
    """Drop tasks whose snapshots expired from the owner's index (the context set only when
    known: the retention trims it in time)."""
    keys = [owner_tasks_key(owner), *(owner_state_tasks_key(s.value, owner) for s in TaskState)]
    if context_id is not None:
        keys.append(owner_context_tasks_key(context_id, owner))
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.zrem(key, *task_ids)
        await pipe.execute()


def _keys(owner: str | None, query: ListQuery) -> list[str]:
    """The set to walk and, with both a context and a state, the state's set to intersect it with."""
    if query.context_id is not None:
        context = owner_context_tasks_key(query.context_id, owner)
        if query.state is not None:
            return [context, owner_state_tasks_key(query.state, owner)]
        return [context]
    if query.state is not None:
        return [owner_state_tasks_key(query.state, owner)]
    return [owner_tasks_key(owner)]
