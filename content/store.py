"""The content store: what a task's messages, artifacts and metadata hold, kept out of Temporal.

The gateway stores each user message before it reaches the workflow; the worker stores what a turn
produced before it reports the turn; both read the task back from its `TaskRecord`. One Redis key per
piece, under the task's hash slot, named by the SHA-256 of the piece's JSON (so storing it twice is
harmless), kept for the task's retention: every write and read renews it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel
from redis.asyncio import Redis

from protocol import Artifact, Message, Task, TaskStatus
from protocol.keys import task_content_key
from protocol.records import ContentRef, StatusRecord, TaskRecord

_T = TypeVar("_T")


class ContentMissingError(Exception):
    """Content a task refers to is no longer in the store (its retention passed, or Redis lost it),
    or no longer parses."""


class ContentStore:
    def __init__(self, redis: Redis, *, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    async def put(self, task_id: str, items: Sequence[bytes]) -> list[ContentRef]:
        """Store each of `items` under the task; their references, in order."""
        refs = [ContentRef.of(raw) for raw in items]
        unique = {ref.digest: raw for ref, raw in zip(refs, items, strict=True)}
        async with self._redis.pipeline(transaction=False) as pipe:
            for digest, raw in unique.items():
                pipe.set(task_content_key(task_id, digest), raw, ex=self._ttl)
            await pipe.execute()
        return refs

    async def get(self, task_id: str, refs: Sequence[ContentRef]) -> dict[str, bytes]:
        """What the store still holds of `refs`, by digest (one round trip; each read renews it)."""
        digests = list(dict.fromkeys(ref.digest for ref in refs))
        if not digests:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for digest in digests:
                pipe.getex(task_content_key(task_id, digest), ex=self._ttl)
            found: list[Any] = await pipe.execute()
        return {digest: raw for digest, raw in zip(digests, found, strict=True) if raw is not None}

    async def put_message(self, task_id: str, message: Message) -> ContentRef:
        (ref,) = await self.put(task_id, [wire_json(message)])
        return ref

    async def put_status(self, task_id: str, status: TaskStatus) -> StatusRecord:
        """The record of `status`, its message stored."""
        ref = None if status.message is None else await self.put_message(task_id, status.message)
        return StatusRecord.of(status, ref)

    async def task(self, record: TaskRecord, *, strict: bool = True) -> Task:
        """The Task `record` describes, read from the store. `strict`: ContentMissingError when any
        of it is gone or does not parse; otherwise that piece is left out (a message, an artifact,
        the metadata)."""
        found = await self.get(record.id, record.refs())

        def piece(ref: ContentRef, parse: Callable[[bytes], _T]) -> _T | None:
            raw = found.get(ref.digest)
            if raw is None:
                problem = "is no longer in the content store (past its retention, or lost by Redis)"
            else:
                try:
                    return parse(raw)
                except ValueError as err:
                    problem = f"does not parse: {err}"
            if strict:
                raise ContentMissingError(
                    f"Content {ref.digest[:12]} of task '{record.id}' {problem}"
                )
            return None

        def message(raw: bytes) -> Message:
            # Stored as the client sent it; in the task, every message names the task and its context.
            return Message.model_validate_json(raw).model_copy(
                update={"taskId": record.id, "contextId": record.contextId}
            )

        history = [m for m in (piece(ref, message) for ref in record.history) if m is not None]
        artifacts = [
            a
            for a in (piece(a.content, Artifact.model_validate_json) for a in record.artifacts)
            if a is not None
        ]
        metadata = None if record.metadata is None else piece(record.metadata, _object)
        status_ref = record.status.message
        return Task(
            id=record.id,
            contextId=record.contextId,
            status=TaskStatus(
                state=record.status.state,
                timestamp=record.status.timestamp,
                message=None if status_ref is None else piece(status_ref, message),
            ),
            history=history,
            artifacts=artifacts or None,
            metadata=metadata,
        )

    async def status(self, task_id: str, context_id: str, record: StatusRecord) -> TaskStatus:
        """The status `record` describes (without its message when the store lost it, or it does
        not parse)."""
        message = None
        if record.message is not None:
            found = await self.get(task_id, [record.message])
            raw = found.get(record.message.digest)
            with contextlib.suppress(ValueError):
                if raw is not None:
                    message = Message.model_validate_json(raw).model_copy(
                        update={"taskId": task_id, "contextId": context_id}
                    )
        return TaskStatus(state=record.state, timestamp=record.timestamp, message=message)


def wire_json(model: BaseModel) -> bytes:
    return orjson.dumps(model.model_dump(mode="json", exclude_none=True, by_alias=True))


def metadata_json(metadata: dict[str, Any]) -> bytes:
    return orjson.dumps(metadata)


def _object(raw: bytes) -> dict[str, Any]:
    value = orjson.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value
