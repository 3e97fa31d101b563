"""`/healthz` (the process answers) and `/readyz` (Redis and Temporal answer within the deadline)."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from starlette.responses import Response
from temporalio.client import Client

from gateway.responses import json_response


def healthy() -> Response:
    return json_response({"status": "ok"})


async def readiness(redis: Redis, temporal: Client, deadline_seconds: float) -> Response:
    async def redis_ok() -> bool:
        async with asyncio.timeout(deadline_seconds):
            return bool(await redis.ping())

    async def temporal_ok() -> bool:
        async with asyncio.timeout(deadline_seconds):
            return await temporal.service_client.check_health()

    checks = {"redis": redis_ok(), "temporal": temporal_ok()}
    results = await asyncio.gather(*checks.values(), return_exceptions=True)
    failing = [name for name, ok in zip(checks, results, strict=True) if ok is not True]
    if failing:
        return json_response({"status": "unavailable", "failing": failing}, 503)
    return json_response({"status": "ok"})
