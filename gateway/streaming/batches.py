"""A task stream's entries batch by batch, for the responses that write them (the SSE stream, the `/ws`
feed): the first read, then the feed's, up to the entry after which the renderer ends the stream."""

from __future__ import annotations

import enum
import logging

from config.redis_clients import REDIS_ERRORS
from gateway.streaming.feed import FeedClosed, SlowConsumer, TaskFeed
from gateway.streaming.log import LogEntry
from gateway.streaming.renderers import Renderer

logger = logging.getLogger(__name__)


class Ending(enum.Enum):
    """Why a stream's batches stopped."""

    # The entry after which the renderer ends the stream came, or nothing follows the first read.
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

    __slots__ = ("_feed", "_first", "_renderer", "_task_id", "_wait", "ending", "live")

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
        # None: nothing follows `first` (any more).
        self._feed = feed
        self._renderer = renderer
        self._wait = wait
        # Whether the last batch came live from the hub (not read back from the log).
        self.live = False
        self.ending = Ending.DONE

    def __aiter__(self) -> Batches:
        return self

    async def __anext__(self) -> list[LogEntry]:
        # The feed is read here, not in a helper coroutine, and a batch makes no object of its own: at
        # 10,000 streams each object that outlives a young collection brings the next full collection
        # (which stalls every stream) nearer (bench.streaming --trace-gc).
        if self._first:
            batch, self._first = self._first, []
            return self._until_end(batch)
        feed = self._feed
        if feed is None:
            raise StopAsyncIteration
        try:
            batch = await feed.next(self._wait)
        except FeedClosed:
            self.ending = Ending.CLOSED
        except SlowConsumer:
            logger.info(
                "Ending a %s stream of task %s: its client fell behind",
                self._renderer.view,
                self._task_id,
            )
            self.ending = Ending.BEHIND
        except (*REDIS_ERRORS, TimeoutError) as err:
            logger.warning(
                "Ending a %s stream of task %s: reading its log failed: %s",
                self._renderer.view,
                self._task_id,
                err,
            )
            self.ending = Ending.FAILED
        else:
            self.live = feed.live
            return self._until_end(batch)
        self._feed = None
        raise StopAsyncIteration

    def _until_end(self, batch: list[LogEntry]) -> list[LogEntry]:
        """`batch` up to the entry after which the stream ends, if it holds one."""
        for index, entry in enumerate(batch):
            if self._renderer.ends(entry):
                self._feed = None
                return batch[: index + 1]
        return batch
