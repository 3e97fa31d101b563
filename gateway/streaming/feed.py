"""A task's events from a position on, each exactly once and in order: what the log holds, then live ones.

The feed is registered with the hub *before* it reads the log, so an event appended while the log is being
read arrives live as well; ids at or before the last one handed out are dropped.
"""

from __future__ import annotations

import asyncio

from gateway.streaming.hub import Hub
from gateway.streaming.log import EventLog, LogEntry, LogRead, entry_key
from gateway.streaming.subscription import Subscription
from protocol import Task, task_channel

# Entries read from the log per Redis call while catching up.
PAGE_SIZE = 500


class SlowConsumer(Exception):
    """The reader fell so far behind that its buffer overflowed."""


class FeedClosed(Exception):
    """The subscription was closed: the client went away or the gateway is shutting down."""


class TaskFeed:
    def __init__(
        self,
        log: EventLog,
        subscription: Subscription,
        task_id: str,
        position: str | None,
        *,
        close_on_overflow: bool,
    ) -> None:
        """`position`: the id of the last entry the reader has, "0" for the whole log, or None to start
        from the task's snapshot."""
        self._log = log
        self._subscription = subscription
        self._task_id = task_id
        self._position = position
        self._last = entry_key(position) if position is not None else (0, 0)
        self._catching_up = True
        self._close_on_overflow = close_on_overflow
        # Whether the entries `next()` returned last came live from the hub (not read from the log).
        self.live = False

    def skip_to(self, entry_id: str) -> None:
        """Go on after entry `entry_id`: the reader has the task as of that entry from elsewhere."""
        self._position = entry_id
        self._last = entry_key(entry_id)

    def stop(self) -> None:
        """End the feed: its reader is gone."""
        self._subscription.close()

    async def first(self) -> LogRead:
        """The first read of the log (or the snapshot); later entries come from `next()`."""
        read = await self._read()
        return LogRead(self._accept(read.entries), read.current, read.snapshot)

    async def next(self, wait: float | None) -> list[LogEntry]:
        """The next entries, or [] when `wait` seconds pass without one."""
        subscription = self._subscription
        loop = asyncio.get_running_loop()
        deadline = None if wait is None else loop.time() + wait
        while True:
            if subscription.closed:
                raise FeedClosed
            if subscription.overflowed:
                if self._close_on_overflow:
                    raise SlowConsumer
                subscription.overflowed = False
                self._catching_up = True
            if self._catching_up or subscription.resync:
                subscription.resync = False
                # Reads return only entries after the position: never one already handed out.
                entries = self._accept((await self._read()).entries)
                if entries:
                    self.live = False
                    return entries
                continue
            left = None if deadline is None else max(0.0, deadline - loop.time())
            received = await subscription.next(left)
            entries = self._accept(received)
            if entries or (not received and not subscription.signalled):
                self.live = True
                return entries
            # Only entries already handed out (read from the log first), or a flag: wait on.

    async def _read(self) -> LogRead:
        read = await self._log.read_after(self._task_id, self._position, PAGE_SIZE)
        # A snapshot is followed by the entries after it; a full page by the next page.
        self._catching_up = bool(read.snapshot and read.entries) or len(read.entries) >= PAGE_SIZE
        return read

    def _accept(self, entries: list[LogEntry]) -> list[LogEntry]:
        fresh = []
        for entry in entries:
            key = entry.key
            if key > self._last or (entry.snapshot and self._position is None):
                fresh.append(entry)
                self._last = key
                self._position = entry.id
        return fresh


class TurnEnds:
    """Where a task's turn stands in its log, for a blocking send: the newest entry before its message
    goes in, then the `task.completed` event after it that ends the turn."""

    def __init__(self, hub: Hub, log: EventLog, *, timeout: float) -> None:
        """`timeout`: the deadline on each Redis step (the hub's subscription, a read)."""
        self._hub = hub
        self._log = log
        self._timeout = timeout

    async def last_event_id(self, task_id: str) -> str | None:
        return await self._log.last_event_id(task_id)

    async def wait_final(self, task_id: str, after: str) -> Task:
        """The task once its log holds a `task.completed` event after entry `after`."""
        async with self._hub.subscribe(
            task_channel(task_id), confirm_within=self._timeout
        ) as subscription:
            feed = TaskFeed(self._log, subscription, task_id, after, close_on_overflow=False)
            batch = (await feed.first()).entries
            while True:
                for entry in batch:
                    if entry.event["type"] == "task.completed":
                        return Task.model_validate(entry.event["task"])
                batch = await feed.next(None)
