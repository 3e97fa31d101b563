"""`GET /readyz` of a real gateway process whose Redis goes away and comes back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from gateway.devstack.processes import free_port, start_redis
from tests.integration.conftest import LaunchGateway
from tests.waiting import eventually

HOST = "127.0.0.1"
# The gateway's deadline on each dependency check (A2A_GATEWAY_CALL_TIMEOUT_SECONDS).
CHECK_SECONDS = 1.0


async def test_readyz_answers_503_naming_redis_while_it_is_stopped_and_200_once_it_returns(
    launch_gateway: LaunchGateway, tmp_path: Path
) -> None:
    port = free_port(HOST)
    redis = start_redis(host=HOST, port=port, data_dir=tmp_path / "redis")
    try:
        with launch_gateway(
            "readiness",
            {"A2A_GATEWAY_CALL_TIMEOUT_SECONDS": str(CHECK_SECONDS)},
            redis_url=f"redis://{HOST}:{port}/0",
        ) as gateway:
            # A readiness answer takes at most one check deadline (the checks run concurrently).
            async with httpx.AsyncClient(base_url=gateway.url, timeout=CHECK_SECONDS + 2) as http:
                assert await _readiness(http) == (200, {"status": "ok"})

                redis.stop()
                assert await _readiness(http) == (
                    503,
                    {"status": "unavailable", "failing": ["redis"]},
                )

                redis = start_redis(host=HOST, port=port, data_dir=tmp_path / "redis")
                assert await _readiness_once_ok(http) == (200, {"status": "ok"})
    finally:
        redis.stop()


async def _readiness(http: httpx.AsyncClient) -> tuple[int, Any]:
    response = await http.get("/readyz")
    return response.status_code, response.json()


async def _readiness_once_ok(http: httpx.AsyncClient) -> tuple[int, Any]:
    """The readiness answer once it is 200 (within 15 s)."""
    return await eventually(
        lambda: _readiness(http),
        15,
        what="/readyz to answer 200",
        until=lambda answer: answer[0] == 200,
        interval=0.1,
    )
