"""The end of a blocking send's turn, from whichever knows first: the task's Redis log or Temporal."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from protocol import Task

logger = logging.getLogger(__name__)

# A blocking send waits this long on the task's Redis log before it also polls Temporal for the
# update's outcome (the log answers first unless Redis is failing).
UPDATE_POLL_AFTER_SECONDS = 2.0


class TurnLog(Protocol):
    """The task's event log as a blocking send reads it (`gateway.streaming.feed.TurnEnds`)."""

    async def last_event_id(self, task_id: str) -> str | None: ...

    async def wait_final(self, task_id: str, after: str) -> Task: ...


async def end_of_turn(
    logged: Callable[[], Awaitable[Task]],
    result: Callable[[], Awaitable[Task | None]],
    *,
    known: bool,
) -> Task | None:
    """The task once an accepted message's turn has ended: from the log (`logged`) or the update's
    outcome (`result`), None when the outcome carries no task.

    The worker appends the turn's final event to the Redis log before it reports the turn to Temporal,
    so the log knows one workflow task sooner than the update does. The update's own answer is asked
    for only when the log is slow to give it (polling it is one more long-poll call on Temporal per
    blocking send) or when it is `known` already; a Redis failure leaves the update to answer.
    """
    if known:
        return await result()
    from_log = asyncio.ensure_future(logged())
    finished: asyncio.Future[Task | None] | None = None
    try:
        alone: set[asyncio.Future[Any]] = {from_log}
        done, _ = await asyncio.wait(alone, timeout=UPDATE_POLL_AFTER_SECONDS)
        if not done:
            finished = asyncio.ensure_future(result())
            racing: set[asyncio.Future[Any]] = {finished, from_log}
            done, _ = await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
        if from_log in done and from_log.exception() is None:
            return from_log.result()
        if from_log in done:
            logger.warning("Reading a task's log failed: %s", from_log.exception())
        if finished is None:
            finished = asyncio.ensure_future(result())
        return await finished
    finally:
        waiters: list[asyncio.Future[Any]] = [from_log]
        if finished is not None:
            waiters.append(finished)
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
