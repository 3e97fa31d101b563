"""Gateway processes for streaming tests: two replicas on one Redis and one Temporal, serving the
session's echo worker queue, and a launcher for gateways with settings of their own."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping

import httpx
import pytest

from tests.integration.sse import GatewayProcess, gateway_process

LaunchGateway = Callable[..., contextlib.AbstractContextManager[GatewayProcess]]


@pytest.fixture(scope="session")
def launch_gateway(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_address: str,
    redis_url: str,
    task_queue: str,
    echo_worker: None,
) -> LaunchGateway:
    """`launch_gateway(name, env={...}, redis_url=...)`: a context manager running one more
    `a2a-gateway serve` on the session's Temporal, Redis (unless `redis_url` says otherwise) and queue."""

    def launch(
        name: str, env: Mapping[str, str] | None = None, *, redis_url: str = redis_url
    ) -> contextlib.AbstractContextManager[GatewayProcess]:
        return gateway_process(
            tmp_path_factory.mktemp(f"gateway-{name}"),
            temporal_address=temporal_address,
            redis_url=redis_url,
            task_queue=task_queue,
            env=env,
            name=name,
        )

    return launch


@pytest.fixture(scope="session")
def gateway_a(launch_gateway: LaunchGateway) -> Iterator[GatewayProcess]:
    with launch_gateway("a") as gateway:
        yield gateway


@pytest.fixture(scope="session")
def gateway_b(launch_gateway: LaunchGateway) -> Iterator[GatewayProcess]:
    with launch_gateway("b") as gateway:
        yield gateway


@pytest.fixture(scope="session")
async def sse_client() -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client for real servers: no base URL, no read timeout (tests set deadlines)."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client:
        yield client
