"""Gateway processes for streaming tests: two replicas on one Redis and one Temporal, serving the
session's echo worker queue."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.integration.sse import GatewayProcess, gateway_process


@pytest.fixture(scope="session")
def gateway_a(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_address: str,
    redis_url: str,
    task_queue: str,
    echo_worker: None,
) -> Iterator[GatewayProcess]:
    with gateway_process(
        tmp_path_factory.mktemp("gateway-a"),
        temporal_address=temporal_address,
        redis_url=redis_url,
        task_queue=task_queue,
        name="a",
    ) as gateway:
        yield gateway


@pytest.fixture(scope="session")
def gateway_b(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_address: str,
    redis_url: str,
    task_queue: str,
    echo_worker: None,
) -> Iterator[GatewayProcess]:
    with gateway_process(
        tmp_path_factory.mktemp("gateway-b"),
        temporal_address=temporal_address,
        redis_url=redis_url,
        task_queue=task_queue,
        name="b",
    ) as gateway:
        yield gateway


@pytest.fixture(scope="session")
async def sse_client() -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client for real servers: no base URL, no read timeout (tests set deadlines)."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client:
        yield client
