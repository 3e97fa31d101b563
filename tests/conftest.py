"""Session fixtures: a real Temporal dev server and a real Redis on free loopback ports (or the servers
named by TEMPORAL_ADDRESS / REDIS_URL; or containers when A2A_TEST_CONTAINERS=1 and Docker answers), an
in-process echo worker, and the gateway app."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, NoReturn

import httpx
import orjson
import pytest
from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from config.webhook_policy import Resolver, system_resolver
from gateway.app import create_app
from gateway.devstack.processes import (
    DevStackError,
    free_port,
    register_search_attributes,
    start_redis,
    start_temporal,
)
from gateway.settings import GatewaySettings
from tests.a2a_schema import assert_valid_response
from workers import WorkerSettings, create_worker
from workflows.names import SEARCH_ATTRIBUTES

HOST = "127.0.0.1"


def unavailable(reason: str) -> NoReturn:
    """Missing infrastructure fails under CI=true and skips (with the reason) elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


def _use_containers() -> bool:
    return os.environ.get("A2A_TEST_CONTAINERS") == "1" and _docker_answers()


@pytest.fixture(scope="session")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("TEMPORAL_ADDRESS"):
        yield os.environ["TEMPORAL_ADDRESS"]
        return
    if _use_containers():
        from testcontainers.core.container import DockerContainer

        command = "server start-dev --ip 0.0.0.0 --headless " + " ".join(
            f"--search-attribute {key.name}=Keyword" for key in SEARCH_ATTRIBUTES
        )
        with (
            DockerContainer("temporalio/temporal:latest")
            .with_command(command)
            .with_exposed_ports(7233) as container
        ):
            yield f"{container.get_container_host_ip()}:{container.get_exposed_port(7233)}"
        return
    log = tmp_path_factory.mktemp("temporal") / "temporal.log"
    port = free_port(HOST)
    with log.open("wb") as log_file:
        try:
            server = start_temporal(host=HOST, port=port, log=log_file)
        except DevStackError as err:
            unavailable(f"Temporal dev server unavailable: {err}")
    try:
        yield f"{HOST}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    if _use_containers():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7") as container:
            yield f"redis://{container.get_container_host_ip()}:{container.get_exposed_port(6379)}/0"
        return
    data_dir: Path = tmp_path_factory.mktemp("redis")
    port = free_port(HOST)
    try:
        server = start_redis(host=HOST, port=port, data_dir=data_dir)
    except DevStackError as err:
        unavailable(f"Redis unavailable: {err}")
    try:
        yield f"redis://{HOST}:{port}/0"
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def temporal_client(temporal_address: str) -> Client:
    client = await Client.connect(temporal_address, data_converter=pydantic_data_converter)
    await register_search_attributes(client, "default")
    return client


@pytest.fixture(scope="session")
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def task_queue() -> str:
    """A queue of this session's own, so a reused Temporal server's other workers never take our tasks."""
    return f"test-echo-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def worker_settings(temporal_address: str, redis_url: str, task_queue: str) -> WorkerSettings:
    return WorkerSettings(
        agent="echo",
        task_queue=task_queue,
        temporal_address=temporal_address,
        redis_url=redis_url,
        heartbeat_seconds=0.2,
        shutdown_grace_seconds=1,
    )


@pytest.fixture(scope="session")
async def echo_worker(
    temporal_client: Client, redis: Redis, worker_settings: WorkerSettings
) -> AsyncIterator[None]:
    async with create_worker(temporal_client, redis, worker_settings):
        yield


@pytest.fixture(scope="session")
def gateway_settings(temporal_address: str, redis_url: str, task_queue: str) -> GatewaySettings:
    return GatewaySettings(
        temporal_address=temporal_address,
        redis_url=redis_url,
        task_queue=task_queue,
        public_url="http://testserver/",
        agent_heartbeat_timeout_seconds=2,
        blocking_timeout_seconds=60,
    )


class RpcClient:
    """Posts JSON-RPC requests to the app and checks every response body against the A2A schema."""

    def __init__(self, http: httpx.AsyncClient, path: str = "/") -> None:
        self.http = http
        self.path = path

    async def call(self, method: str, params: Any, request_id: str | int = 1) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        return await self.post(orjson.dumps(body), method)

    async def post(self, content: bytes, method: Any = None) -> dict[str, Any]:
        response = await self.http.post(
            self.path, content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        body: dict[str, Any] = response.json()
        assert_valid_response(body, method)
        return body


@contextlib.asynccontextmanager
async def app_client(
    settings: GatewaySettings, *, resolver: Resolver = system_resolver
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on a gateway app built from `settings`, its lifespan running."""
    app = create_app(settings, resolver=resolver)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client,
    ):
        yield client


@pytest.fixture(scope="session")
async def http(
    gateway_settings: GatewaySettings, echo_worker: None
) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(gateway_settings) as client:
        yield client


@pytest.fixture
def rpc(http: httpx.AsyncClient) -> RpcClient:
    return RpcClient(http)
