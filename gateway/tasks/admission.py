"""Admission of new work to Temporal: a bound on the task starts and messages a gateway process has
waiting on Temporal at once. When Temporal cannot keep up, a send waits at most the configured time
for a place, then is answered -32000 "server busy" with `Retry-After`, instead of queueing for as
long as Temporal's backlog lasts."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator

from protocol import ServerBusyError


class StartAdmission:
    def __init__(self, limit: int, wait_seconds: float) -> None:
        self.limit = limit
        self.wait_seconds = wait_seconds
        self._places = asyncio.Semaphore(limit)

    @contextlib.asynccontextmanager
    async def place(self) -> AsyncIterator[None]:
        """Hold one of the places while Temporal takes the start or the message; ServerBusyError when
        none frees up within the wait."""
        try:
            async with asyncio.timeout(self.wait_seconds):
                await self._places.acquire()
        except TimeoutError:
            raise ServerBusyError(
                f"Server busy: {self.limit} task starts and messages are waiting on Temporal at "
                f"this gateway process, and none finished within {self.wait_seconds:g} s; "
                "retry later",
                retry_after=max(1, math.ceil(self.wait_seconds)),
            ) from None
        try:
            yield
        finally:
            self._places.release()
