"""Opening a task's stream: the hub subscription first, then the first read of the log, under the
process's stream caps."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

from config.redis_clients import REDIS_ERRORS
from gateway.metrics import GatewayMetrics
from gateway.streaming.feed import TaskFeed
from gateway.streaming.hub import Hub
from gateway.streaming.limits import Lease, StreamLimiter
from gateway.streaming.log import EventLog, LogEntry, snapshot_entry
from gateway.streaming.renderers import Renderer
from gateway.streaming.sse import EventStream
from protocol import InternalError, Task, task_channel

logger = logging.getLogger(__name__)


class Streams:
    """Opens task streams for this process: the hub subscription, the first read, the stream cap."""

    def __init__(
        self,
        hub: Hub,
        log: EventLog,
        *,
        max_streams: int,
        keepalive_seconds: float,
        write_timeout_seconds: float,
        find_task: Callable[[str], Awaitable[Task]],
        timeout: float,
        metrics: GatewayMetrics,
        max_streams_per_principal: int | None = None,
    ) -> None:
        """`timeout`: the deadline on opening a stream (the hub's subscription, the first read)."""
        self.hub = hub
        self.metrics = metrics
        self.limiter = StreamLimiter(max_streams, max_streams_per_principal)
        self._log = log
        self._keepalive = keepalive_seconds
        self.write_timeout = write_timeout_seconds
        self._find_task = find_task
        self._timeout = timeout

    def lease(self, principal: str | None = None) -> Lease:
        return self.limiter.lease(principal)

    async def open(
        self,
        lease: Lease,
        task_id: str,
        position: str | None,
        renderer: Renderer,
        *,
        lead: list[LogEntry] | None = None,
        new_turn: bool = False,
    ) -> EventStream:
        """The stream of `task_id` after `position` (None: from its snapshot), led by `lead`.

        `new_turn`: the caller has just delivered a message, so the task has more to say whatever its
        snapshot shows yet. Otherwise an unknown task raises -32001, and a task that has ended with
        nothing after `position` gives a finished stream. The lease is released if this raises.
        """
        exit_stack = contextlib.AsyncExitStack()
        try:
            try:
                subscription = await exit_stack.enter_async_context(
                    self.hub.subscribe(task_channel(task_id), confirm_within=self._timeout)
                )
                feed = TaskFeed(self._log, subscription, task_id, position, close_on_overflow=True)
                read = await feed.first()
            except (*REDIS_ERRORS, TimeoutError) as err:
                logger.warning("Cannot open the stream of task %s: %s", task_id, err)
                raise InternalError(
                    "Internal error: the task event log (Redis) is unavailable; retry shortly"
                ) from err
            first = [*(lead or []), *read.entries]
            ongoing: TaskFeed | None = feed
            if not read.entries and not new_turn:
                current = read.current
                if current is None:
                    # Redis has lost the task (or never had it): the workflow knows.
                    current = (await self._find_task(task_id)).to_wire()
                    if position is None:
                        first.append(snapshot_entry("0", current))
                        feed.skip_to("0")
                if renderer.over(current):
                    ongoing = None
            if any(renderer.ends(entry) for entry in first):
                ongoing = None
        except BaseException:
            await exit_stack.aclose()
            lease.release()
            raise
        return EventStream(
            task_id=task_id,
            lease=lease,
            exit_stack=exit_stack,
            feed=ongoing,
            first=first,
            renderer=renderer,
            keepalive_seconds=self._keepalive,
            write_timeout_seconds=self.write_timeout,
            metrics=self.metrics,
        )
