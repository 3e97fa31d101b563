"""A task stream's entries batch by batch, for the responses that write them (the SSE stream, the `/ws`
feed): the first read, then the feed's, up to the entry after which the renderer ends the stream."""

from __future__ import annotations

import enum
import logging
from collections.abc import AsyncIterator

from redis.exceptions import RedisError

from gateway.streaming.feed import FeedClosed, SlowConsumer, TaskFeed
from gateway.streaming.log import LogEntry
from gateway.streaming.renderers import Renderer

logger = logging.getLogger(__name__)


class Ending(enum.Enum):
    """Why a stream's batches stopped."""

    # The renderer's last entry went out, or there was nothing beyond the first read.
    DONE = "done"
    # The client went away, or the gateway is shutting down (the hub closed its subscriptions).
    CLOSED = "closed"
    # The client fell so far behind that the feed's buffer overflowed.
    BEHIND = "behind"
    # The task's log could not be read.
    FAILED = "failed"


class Batches:
    """Iterates over the entries of one stream, batch by batch, in log order and each once.

    `wait`: seconds without an entry after which an empty batch comes (the writer's turn to keep the
    connection alive); None: no empty batch. Once the iteration is over, `ending` says why.
    """

    def __init__(
        self,
        task_id: str,
        first: list[LogEntry],
        feed: TaskFeed | None,
        renderer: Renderer,
        wait: float | None,
    ) -> None:
        self._task_id = task_id
        self._first = first
        # None: the stream has nothing beyond `first`.
        self._feed = feed
        self._renderer = renderer
        self._wait = wait
        # Whether the last batch came live from the hub (not read back from the log).
        self.live = False
        self.ending = Ending.DONE

    async def __aiter__(self) -> AsyncIterator[list[LogEntry]]:
        batch = self._first
        while True:
            batch, ended = self._until_end(batch)
            if batch:
                yield batch
            if ended or self._feed is None:
                return
            following = await self._next(self._feed)
            if following is None:
                return
            if not following:
                yield following
            batch = following

    def _until_end(self, batch: list[LogEntry]) -> tuple[list[LogEntry], bool]:
        for index, entry in enumerate(batch):
            if self._renderer.ends(entry):
                return batch[: index + 1], True
        return batch, False

    async def _next(self, feed: TaskFeed) -> list[LogEntry] | None:
        """The feed's next batch; None when the feed has ended (`ending` says why)."""
        try:
            batch = await feed.next(self._wait)
        except FeedClosed:
            self.ending = Ending.CLOSED
            return None
        except SlowConsumer:
            logger.info(
                "Ending a %s stream of task %s: its client fell behind",
                self._renderer.view,
                self._task_id,
            )
            self.ending = Ending.BEHIND
            return None
        except (RedisError, TimeoutError) as err:
            logger.warning(
                "Ending a %s stream of task %s: reading its log failed: %s",
                self._renderer.view,
                self._task_id,
                err,
            )
            self.ending = Ending.FAILED
            return None
        self.live = feed.live
        return batch
