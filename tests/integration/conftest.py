"""Gateway processes for streaming tests: two replicas on one Redis and one Temporal, serving the
session's echo worker queue, and a launcher for gateways with settings of their own."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.worker import Worker

from tests.integration.sse import GatewayProcess, gateway_process
from workers import WorkerSettings, create_worker

LaunchGateway = Callable[..., contextlib.AbstractContextManager[GatewayProcess]]
AgentWorker = Callable[..., Worker]


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
    return gateway_launcher(
        tmp_path_factory,
        temporal_address=temporal_address,
        redis_url=redis_url,
        task_queue=task_queue,
    )


def gateway_launcher(
    tmp_path_factory: pytest.TempPathFactory,
    *,
    temporal_address: str,
    redis_url: str,
    task_queue: str,
    prefix: str = "gateway",
) -> LaunchGateway:
    """A `launch(name, env=None, *, redis_url=...)` of gateways on this Temporal, Redis and queue,
    each logging under a directory named `<prefix>-<name>`."""

    def launch(
        name: str, env: Mapping[str, str] | None = None, *, redis_url: str = redis_url
    ) -> contextlib.AbstractContextManager[GatewayProcess]:
        return gateway_process(
            tmp_path_factory.mktemp(f"{prefix}-{name}"),
            temporal_address=temporal_address,
            redis_url=redis_url,
            task_queue=task_queue,
            env=env,
            name=name,
        )

    return launch


@pytest.fixture(scope="session")
def agent_worker(
    temporal_client: Client, redis: Redis, temporal_address: str, redis_url: str
) -> AgentWorker:
    """`async with agent_worker(agents_file, name, **settings)`: an in-process worker for one agent of
    an agents file, on the session's Temporal and Redis."""

    def start(config: Path, agent: str, **overrides: Any) -> Worker:
        settings = WorkerSettings(
            config=config,
            agent=agent,
            temporal_address=temporal_address,
            redis_url=redis_url,
            heartbeat_seconds=0.2,
            shutdown_grace_seconds=1,
            **overrides,
        )
        return create_worker(temporal_client, redis, settings)

    return start


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
