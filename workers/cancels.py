"""Cancel requests delivered to running turns over Redis: the fast path of `tasks/cancel`.

The gateway sets the task's cancel marker and publishes the task id on `CANCEL_CHANNEL`. Each worker
process listens on the channel and cancels the turn it runs for that task, which then ends the task
`canceled` itself. A turn that starts after the request, or whose worker missed the message (its
subscription was reconnecting), finds the marker when it registers. The workflow's cancel of the
turn's activity, which Temporal delivers with the next heartbeat, stays the durable backstop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from redis.asyncio import ConnectionPool, Redis

from config.redis_clients import REDIS_ERRORS, RedisTarget
from protocol.keys import CANCEL_CHANNEL, REQUEST_CANCEL_SCRIPT, task_cancel_key

logger = logging.getLogger(__name__)

RECONNECT_SECONDS = 1.0


class TurnCancels:
    """The turns this worker process runs, by task id, and the listener that cancels them."""

    def __init__(self, redis: Redis, target: RedisTarget | None = None) -> None:
        """`target`: where `redis` connects (the listener opens a connection of its own there);
        by default the server `redis`'s pool reaches."""
        self._redis = redis
        self._target = target
        self._request = redis.register_script(REQUEST_CANCEL_SCRIPT)
        self._running: dict[str, Callable[[], None]] = {}

    @contextlib.asynccontextmanager
    async def running(self, task_id: str, cancel: Callable[[], None]) -> AsyncIterator[bool]:
        """Register a turn while it runs; yields True when the task's cancel was requested already
        (the turn should end canceled at once). `cancel` is called on a later request."""
        self._running[task_id] = cancel
        try:
            requested = bool(await self._redis.exists(task_cancel_key(task_id)))
            yield requested
        finally:
            if self._running.get(task_id) is cancel:
                del self._running[task_id]

    async def request(self, task_id: str, ttl_seconds: int) -> None:
        """Ask every worker to cancel the task's running turn, as the gateway does for tasks/cancel."""
        await self._request(
            keys=[task_cancel_key(task_id)], args=[CANCEL_CHANNEL, task_id, ttl_seconds]
        )

    def requested(self, task_id: str) -> None:
        cancel = self._running.get(task_id)
        if cancel is not None:
            cancel()

    async def listen(self) -> None:
        """Cancel this process's turns as their requests arrive, until cancelled; reconnects after a
        Redis failure (the cancel marker covers what was missed meanwhile)."""
        # A connection of its own, with no socket timeout (a subscription waits for messages as
        # long as it takes): the subscription holds it for good, and the turns' pool (which may be
        # small) stays theirs. Opened again after a failure: on a cluster's live node, or on the
        # primary Sentinel names then.
        while True:
            own: Redis | None = None
            try:
                own = Redis(connection_pool=await self._dedicated_pool())
                async with own.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CANCEL_CHANNEL)
                    await self._missed()
                    async for message in pubsub.listen():
                        self._dispatch(message)
            except (*REDIS_ERRORS, OSError) as err:
                logger.warning("Cancel channel lost (%s); reconnecting", err)
                await asyncio.sleep(RECONNECT_SECONDS)
            finally:
                if own is not None:
                    await own.aclose()

    async def _dedicated_pool(self) -> ConnectionPool:
        if self._target is not None:
            return await self._target.dedicated_pool(self._redis)
        pool = self._redis.connection_pool
        return ConnectionPool(
            connection_class=pool.connection_class,
            **{**pool.connection_kwargs, "socket_timeout": None},
        )

    async def _missed(self) -> None:
        """Cancel the running turns whose request came while this process was not subscribed."""
        running = list(self._running)
        if not running:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for task_id in running:
                pipe.exists(task_cancel_key(task_id))
            found = await pipe.execute()
        for task_id, requested in zip(running, found, strict=True):
            if requested:
                self.requested(task_id)

    def _dispatch(self, message: dict[str, Any]) -> None:
        data = message.get("data")
        if isinstance(data, bytes):
            self.requested(data.decode(errors="replace"))
