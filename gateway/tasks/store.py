"""Tasks in Redis as the gateway reads and writes them: snapshots (the fast path of tasks/get; the workflow
stays the source of truth), owners, and the tasks `message/stream` requests started."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, cast

import orjson
from pydantic import ValidationError
from redis.asyncio import Redis

from config.redis_clients import REDIS_ERRORS
from content import wire_json
from gateway.tasks.pipelined import (
    CACHE_ENTRIES,
    CACHE_VALUE_BYTES,
    PipelinedReader,
    PipelineError,
)
from protocol import (
    TERMINAL_STATES,
    Message,
    Task,
    message_task_key,
    task_owner_key,
    task_snapshot_key,
)
from protocol.keys import CANCEL_CHANNEL, REQUEST_CANCEL_SCRIPT, task_cancel_key
from protocol.records import ContentRef

logger = logging.getLogger(__name__)

# A terminal task never changes again, so each gateway keeps the last ones it read: at most this
# many, each for this long (well under any retention, so a task the workflow has forgotten is soon
# forgotten here too).
TERMINAL_CACHE_SIZE = 10_000
TERMINAL_CACHE_SECONDS = 60.0
_TERMINAL_STATE_VALUES = frozenset(state.value for state in TERMINAL_STATES)
# KEYS: a message's claim. ARGV: its value (`_claim`). Deleted only if it is still that claim.
_RELEASE = """
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
"""


class TaskStore:
    def __init__(
        self,
        redis: Redis,
        *,
        reader: PipelinedReader | None,
        ttl_seconds: int,
        timeout: float,
    ) -> None:
        """`reader` serves the snapshot reads (when there is one), `redis` everything else."""
        self._redis = redis
        self._reader = reader
        self._ttl = ttl_seconds
        self._timeout = timeout
        self._release = redis.register_script(_RELEASE)
        self._request_cancel = redis.register_script(REQUEST_CANCEL_SCRIPT)
        # task id -> (monotonic expiry, wire form), oldest first.
        self._terminal: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        # Open task id -> the snapshot last read and its wire form, oldest first: while the reader
        # serves the same bytes from memory, they are not parsed again.
        self._open: dict[str, tuple[bytes, dict[str, Any]]] = {}

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
        what it has is not a JSON object. Shared with later callers: not to be changed."""
        remembered = self._terminal.get(task_id)
        if remembered is not None:
            if remembered[0] > time.monotonic():
                return remembered[1]
            del self._terminal[task_id]
        key = task_snapshot_key(task_id)
        raw = None if self._reader is None else self._reader.cached(key)
        if raw is not None:
            parsed = self._open.get(task_id)
            if parsed is not None and parsed[0] is raw:
                return parsed[1]
        else:
            raw = await self._read(key)
            if raw is None:
                return None
        return self._parse(task_id, raw)

    def _parse(self, task_id: str, raw: bytes) -> dict[str, Any] | None:
        """The snapshot's wire form, kept: for a minute when terminal, else with its bytes."""
        try:
            wire = orjson.loads(raw)
        except orjson.JSONDecodeError:
            wire = None
        if not isinstance(wire, dict):
            logger.error("Unreadable snapshot for task %s; asking the workflow", task_id)
            return None
        self._open.pop(task_id, None)
        status = wire.get("status")
        if isinstance(status, dict) and status.get("state") in _TERMINAL_STATE_VALUES:
            self._terminal[task_id] = (time.monotonic() + TERMINAL_CACHE_SECONDS, wire)
            if len(self._terminal) > TERMINAL_CACHE_SIZE:
                self._terminal.popitem(last=False)
        elif self._reader is not None and self._reader.caching and len(raw) <= CACHE_VALUE_BYTES:
            self._open[task_id] = (raw, wire)
            if len(self._open) > CACHE_ENTRIES:
                del self._open[next(iter(self._open))]
        return wire

    async def _read(self, key: str) -> bytes | None:
        """A snapshot from Redis: None when it has none or cannot answer."""
        try:
            async with asyncio.timeout(self._timeout):
                if self._reader is None:
                    raw: Any = await self._redis.get(key)
                    return cast(bytes | None, raw)
                return await self._reader.get(key)
        except (PipelineError, *REDIS_ERRORS, TimeoutError) as err:
            logger.warning("Redis read of %s failed, asking the workflow: %s", key, err)
            return None

    async def refill(self, task: Task) -> None:
        """Cache a Task read from the workflow. NX: a newer snapshot written meanwhile by a worker wins."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.set(
                    task_snapshot_key(task.id), orjson.dumps(task.to_wire()), ex=self._ttl, nx=True
                )
        except (*REDIS_ERRORS, TimeoutError) as err:
            logger.warning("Could not cache task %s in Redis: %s", task.id, err)

    async def claim_message(
        self, message: Message, task_id: str, principal: str | None = None
    ) -> Claim | None:
        """Record that `principal`'s message goes to `task_id`, unless its id was sent before: then
        where it went, and whether with the same content (kept for the retention: the exactly-once
        window)."""
        async with asyncio.timeout(self._timeout):
            previous: Any = await self._redis.set(
                message_task_key(message.messageId, principal),
                _claim(message, task_id),
                ex=self._ttl,
                nx=True,
                get=True,
            )
        if previous is None:
            return None
        claimed_task, _, digest = previous.decode().rpartition(" ")
        if not claimed_task:  # claimed before claims kept the content's digest
            return Claim(digest, True)
        return Claim(claimed_task, digest == _digest(message))

    async def delivered(self, task_id: str, message_id: str) -> bool:
        """Whether the task's snapshot holds the message (False when Redis has no snapshot)."""
        task = await self.get(task_id)
        return task is not None and any(m.messageId == message_id for m in task.history or [])

    async def release_message(
        self, message: Message, task_id: str, principal: str | None = None
    ) -> None:
        """Forget that the message went to `task_id` (it was refused there: not delivered), so that
        a retry is a first send again."""
        key = message_task_key(message.messageId, principal)
        async with asyncio.timeout(self._timeout):
            await self._release(keys=[key], args=[_claim(message, task_id)])

    async def request_cancel(self, task_id: str) -> bool:
        """Tell the worker running the task's turn to cancel it (`workers.cancels`): the marker for
        a turn not yet started (or a worker that missed the message), then the message. True when
        this was the task's first cancel request. Best effort: the workflow's cancel is the durable
        path."""
        try:
            async with asyncio.timeout(self._timeout):
                first = await self._request_cancel(
                    keys=[task_cancel_key(task_id)], args=[CANCEL_CHANNEL, task_id, self._ttl]
                )
        except (*REDIS_ERRORS, TimeoutError) as err:
            logger.warning("Cancel of task %s not sent over Redis: %s", task_id, err)
            return False
        return bool(first)

    async def set_owner(self, task_id: str, principal: str) -> None:
        async with asyncio.timeout(self._timeout):
            await self._redis.set(task_owner_key(task_id), principal, ex=self._ttl)

    async def owner(self, task_id: str) -> str | None:
        """The principal that created the task, or None when Redis does not know (the workflow does)."""
        async with asyncio.timeout(self._timeout):
            owner: Any = await self._redis.get(task_owner_key(task_id))
        return owner.decode() if isinstance(owner, bytes) else owner


@dataclass(frozen=True, slots=True)
class Claim:
    """Where a message id went before, and whether the message then was this one."""

    task_id: str
    same_content: bool


def _digest(message: Message) -> str:
    return ContentRef.of(wire_json(message)).digest


def _claim(message: Message, task_id: str) -> str:
    """A claim's value: the task, then the SHA-256 of the message's JSON (as the content store's)."""
    return f"{task_id} {_digest(message)}"
