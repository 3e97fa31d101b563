"""What one listener of a task's channel has not consumed yet: filled by the hub's listener
(`gateway.streaming.hub`), drained by the stream or feed that listens."""

from __future__ import annotations

import asyncio

from gateway.streaming.log import LogEntry


class Subscription:
    """What one listener has not consumed yet. Filled by the hub's listener, drained by `next()`."""

    __slots__ = ("_items", "_limit", "_waiter", "closed", "overflowed", "resync")

    def __init__(self, limit: int) -> None:
        self._items: list[LogEntry] = []
        self._limit = limit
        self._waiter: asyncio.Future[None] | None = None
        # The buffer filled up; entries were dropped from here on (the stream still has them).
        self.overflowed = False
        # Entries may have been missed (pub/sub reconnect, an entry announced by id alone).
        self.resync = False
        # The hub is shutting down.
        self.closed = False

    def push(self, entry: LogEntry) -> None:
        if self.overflowed:
            return
        if len(self._items) >= self._limit:
            self.overflowed = True
            self._items = []
        else:
            self._items.append(entry)
        self._wake()

    def mark_resync(self) -> None:
        self.resync = True
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    @property
    def signalled(self) -> bool:
        return bool(self._items) or self.overflowed or self.resync or self.closed

    async def next(self, wait: float | None) -> list[LogEntry]:
        """The entries received since the last call; waits up to `wait` seconds for one (or for a
        flag to be raised) and returns [] when none came."""
        if not self.signalled:
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(wait, _wake, waiter) if wait is not None else None
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
        items, self._items = self._items, []
        return items

    def _wake(self) -> None:
        _wake(self._waiter)


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
