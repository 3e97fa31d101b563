"""Waiting in tests for what happens a little later: `eventually` looks at a condition until it holds,
and otherwise fails with an AssertionError naming what it waited for and the last value it saw.
`eventually_sync` is the same wait for code that cannot await (it blocks its thread as it pauses)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast, overload

T = TypeVar("T")

INTERVAL = 0.05
_NOTHING = object()


@overload
async def eventually(
    condition: Callable[[], Awaitable[T]],
    timeout: float,  # noqa: ASYNC109 - the wait's own deadline, part of what it asserts
    *,
    what: str,
    until: Callable[[T], object] = bool,
    interval: float = INTERVAL,
) -> T: ...


@overload
async def eventually(
    condition: Callable[[], T],
    timeout: float,  # noqa: ASYNC109
    *,
    what: str,
    until: Callable[[T], object] = bool,
    interval: float = INTERVAL,
) -> T: ...


async def eventually(
    condition: Callable[[], Any],
    timeout: float,  # noqa: ASYNC109
    *,
    what: str,
    until: Callable[[Any], object] = bool,
    interval: float = INTERVAL,
) -> Any:
    """The first value of `condition()` (a sync or an async callable) for which `until(value)` is true
    (by default: the first truthy value), looking at once and then every `interval` seconds. After
    `timeout` seconds it fails with an AssertionError naming `what` it waited for and the last value
    seen; a look still running then is cancelled. Errors raised by `condition` or `until` propagate."""
    polling = _Polling(condition, until, timeout, interval, what)
    bound = asyncio.timeout(timeout)
    try:
        async with bound:
            return await polling.run(asyncio.sleep)
    except TimeoutError:
        if not bound.expired():
            raise
        raise polling.timed_out() from None


def eventually_sync(
    condition: Callable[[], T],
    timeout: float,
    *,
    what: str,
    until: Callable[[T], object] = bool,
    interval: float = INTERVAL,
) -> T:
    """`eventually` for a sync `condition`, pausing with `time.sleep`. A look still running at the
    deadline is not cut short: the failure comes once it returns."""
    polling = _Polling(condition, until, timeout, interval, what)
    run = polling.run(time.sleep)
    # With neither the condition nor the pause returning an awaitable, nothing in `run` suspends: one
    # step takes it to its end, no event loop needed.
    try:
        run.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    run.close()
    raise TypeError(f"eventually_sync: the condition for {what} awaited; use eventually")


@dataclass
class _Polling:
    """The one polling loop of both waits, with the pause (`asyncio.sleep` or `time.sleep`) passed in."""

    condition: Callable[[], Any]
    until: Callable[[Any], object]
    timeout: float
    interval: float
    what: str
    last: Any = _NOTHING

    async def run(self, pause: Callable[[float], object]) -> Any:
        deadline = time.monotonic() + self.timeout
        while True:
            self.last = await _settled(self.condition())
            if self.until(self.last):
                return self.last
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self.timed_out()
            await _settled(pause(min(self.interval, remaining)))

    def timed_out(self) -> AssertionError:
        last = (
            "none (the first look had not returned)" if self.last is _NOTHING else repr(self.last)
        )
        return AssertionError(
            f"Timed out after {self.timeout} s waiting for {self.what}; last value seen: {last}"
        )


async def _settled(value: object) -> Any:
    """`value`, awaited if it is awaitable."""
    if inspect.isawaitable(value):
        return await value
    return value
