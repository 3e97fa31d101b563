"""Per-caller request rate limits, kept in Redis so that they hold across gateway replicas."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from redis.asyncio import Redis

from config.redis_clients import REDIS_ERRORS
from protocol import RateLimitedError, rate_limit_key

logger = logging.getLogger(__name__)

# GCRA (a leaky bucket kept as one number, the theoretical arrival time `tat`, in microseconds of the
# Redis server's clock). KEYS: the caller's key. ARGV: emission interval, burst tolerance (both µs).
# Returns 0 when the request is admitted, else the microseconds until it would be.
_ADMIT = """
local clock = redis.call("TIME")
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call("GET", KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
local wait = next_tat - tolerance - now
if wait > 0 then return wait end
redis.call("SET", KEYS[1], next_tat, "PX", math.ceil((next_tat - now) / 1000) + 1000)
return 0
"""


class RateLimiter:
    """`per_second` requests a second per caller on average, in bursts of up to `burst`."""

    def __init__(self, redis: Redis, *, per_second: float, burst: int, timeout: float) -> None:
        self._interval = round(1_000_000 / per_second)
        self._tolerance = self._interval * burst
        self._timeout = timeout
        self._script = redis.register_script(_ADMIT)

    async def admit(self, caller: str) -> None:
        """Raise RateLimitedError (HTTP 429) when `caller` is over its rate. If Redis cannot answer,
        the request is let through: the limit guards the gateway, it must not take it down."""
        try:
            async with asyncio.timeout(self._timeout):
                wait: Any = await self._script(
                    keys=[rate_limit_key(caller)], args=[self._interval, self._tolerance]
                )
        except (*REDIS_ERRORS, OSError, TimeoutError) as err:
            logger.warning("Rate limit not checked (Redis: %s)", err)
            return
        if int(wait) > 0:
            retry_after = max(1, math.ceil(int(wait) / 1_000_000))
            raise RateLimitedError(
                f"Rate limit exceeded: retry in {retry_after} s", retry_after=retry_after
            )
