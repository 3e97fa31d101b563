"""The tests' waiting helper: `eventually` and `eventually_sync` return the first value that holds, fail
naming what they waited for and the last value seen, and let a condition's own errors through."""

from __future__ import annotations

import asyncio
import itertools
import re
import time

import pytest

from tests.waiting import eventually, eventually_sync


async def test_eventually_returns_the_first_truthy_value_of_a_sync_condition() -> None:
    looks = itertools.count()
    assert await eventually(lambda: next(looks) >= 3 and "ready", 5, what="three looks") == "ready"
    assert next(looks) == 4


async def test_eventually_awaits_an_async_condition_and_applies_until() -> None:
    values = iter([1, 2, 3, 4])

    async def value() -> int:
        await asyncio.sleep(0)
        return next(values)

    assert await eventually(value, 5, what="3", until=lambda v: v == 3, interval=0.001) == 3
    assert next(values) == 4


async def test_eventually_looks_at_once() -> None:
    started = time.monotonic()
    assert await eventually(lambda: True, 5, what="true", interval=10)
    assert time.monotonic() - started < 1


async def test_eventually_fails_naming_what_it_waited_for_and_the_last_value() -> None:
    looks = itertools.count()
    message = "Timed out after 0.2 s waiting for the count to pass 1000; last value seen: "
    with pytest.raises(AssertionError, match=re.escape(message) + r"\d+$"):
        await eventually(
            lambda: next(looks), 0.2, what="the count to pass 1000", until=lambda n: n > 1000
        )
    assert next(looks) > 2


async def test_eventually_cancels_a_look_running_at_the_deadline() -> None:
    looks = 0

    async def slow() -> int:
        nonlocal looks
        looks += 1
        if looks > 1:
            await asyncio.sleep(10)
        return looks

    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"waiting for a slow look; last value seen: 1$"):
        await eventually(slow, 0.2, what="a slow look", until=lambda n: n > 5)
    assert time.monotonic() - started < 2


async def test_eventually_without_a_look_returned_says_so() -> None:
    async def hung() -> bool:
        await asyncio.sleep(10)
        return True

    with pytest.raises(AssertionError, match=r"none \(the first look had not returned\)$"):
        await eventually(hung, 0.1, what="a hung look")


async def test_eventually_lets_the_conditions_own_errors_through() -> None:
    def broken() -> bool:
        raise TimeoutError("the condition's own")

    with pytest.raises(TimeoutError, match="the condition's own"):
        await eventually(broken, 5, what="nothing")

    def wrong() -> bool:
        raise AssertionError("checked inside the condition")

    with pytest.raises(AssertionError, match=r"^checked inside the condition$"):
        await eventually(wrong, 5, what="nothing")


def test_eventually_sync_returns_the_first_value_that_holds() -> None:
    looks = itertools.count()
    assert eventually_sync(lambda: next(looks), 5, what="3", until=lambda n: n == 3) == 3


def test_eventually_sync_fails_naming_what_it_waited_for_and_the_last_value() -> None:
    message = "Timed out after 0.1 s waiting for a list; last value seen: []"
    with pytest.raises(AssertionError, match=f"^{re.escape(message)}$"):
        eventually_sync(list, 0.1, what="a list")


def test_eventually_sync_refuses_a_condition_that_awaits() -> None:
    async def later() -> bool:
        await asyncio.sleep(0)
        return True

    # asyncio.sleep(0) yields once, even without a loop: the sync wait cannot run it.
    with pytest.raises(TypeError, match="use eventually"):
        _ = eventually_sync(later, 5, what="an awaiting condition")
