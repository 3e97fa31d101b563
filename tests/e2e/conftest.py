"""The web console's stack for browser tests: echo agents (an agents file, a worker for each, on queues of
their own), one `a2a-gateway serve` process that can be restarted on the same port, and Debian's
Chromium driven by Playwright. Each test's last view is saved as a screenshot under `.a2a/test-artifacts/`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx
import jwt
import pytest
from playwright.async_api import Browser, Page, async_playwright
from redis.asyncio import Redis
from temporalio.client import Client

from gateway.devstack.processes import free_port
from tests.conftest import HOST, unavailable
from tests.integration.sse import GatewayProcess, gateway_process
from workers import WorkerSettings, create_worker

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / ".a2a" / "test-artifacts"
# Shown in the console's links; the tests never open it.
TEMPORAL_UI_URL = "http://127.0.0.1:8233"
# Replies stream visibly: `quick` in 12 pieces over about a second, `slow` in 40 over about six; `ask`
# replies briefly and waits for the next message (input-required).
AGENTS = {
    "quick": (12, 0.08, "completed"),
    "slow": (40, 0.15, "completed"),
    "ask": (3, 0.05, "input-required"),
}
API_KEY = "console-test-key"
# The auth gateway also takes HS256 JWTs signed with this secret (read from JWT_SECRET_ENV).
JWT_SECRET_ENV = "A2A_E2E_JWT_SECRET"
JWT_SECRET = "console-test-hs256-secret-0123456789"
JWT_AUDIENCE = "a2a-console-test"
JWT_ISSUER = "https://issuer.console.test"


def console_jwt(subject: str = "console") -> str:
    """A JWT the auth gateway accepts for an hour; each one different (its own `jti`)."""
    payload = {
        "sub": subject,
        "aud": JWT_AUDIENCE,
        "iss": JWT_ISSUER,
        "exp": int(time.time()) + 3600,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(payload, JWT_SECRET, algorithm="HS256")


@pytest.fixture(scope="session")
def agents_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The echo agents of AGENTS on queues of this session's own; `slow` is the default."""
    suffix = uuid.uuid4().hex[:8]
    lines = ['default = "slow"']
    for name, (chunks, delay, final_state) in AGENTS.items():
        lines += [
            f"[agents.{name}]",
            'kind = "echo"',
            f'task_queue = "e2e-{name}-{suffix}"',
            f'name = "{name.capitalize()} Echo"',
            f'description = "Echoes in {chunks} pieces, {delay} s apart."',
            f'options = {{ chunks = {chunks}, delay = {delay}, finalState = "{final_state}" }}',
        ]
    path = tmp_path_factory.mktemp("console") / "agents.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def auth_agents_file(agents_file: Path) -> Path:
    """The same agents, with auth: API_KEY is principal `console`'s key, and `console_jwt()` tokens are
    accepted as Bearer JWTs."""
    digest = hashlib.sha256(API_KEY.encode()).hexdigest()
    path = agents_file.with_name("agents-auth.toml")
    path.write_text(
        f"""{agents_file.read_text()}
[auth.api_keys.console]
key_sha256 = "{digest}"
[auth.jwt]
secret_env = "{JWT_SECRET_ENV}"
audience = "{JWT_AUDIENCE}"
issuer = "{JWT_ISSUER}"
"""
    )
    return path


@pytest.fixture(scope="session")
async def console_workers(
    agents_file: Path,
    temporal_client: Client,
    redis: Redis,
    temporal_address: str,
    redis_url: str,
) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for name in AGENTS:
            settings = WorkerSettings(
                config=agents_file,
                agent=name,
                temporal_address=temporal_address,
                redis_url=redis_url,
                heartbeat_seconds=0.2,
                shutdown_grace_seconds=1,
            )
            await stack.enter_async_context(create_worker(temporal_client, redis, settings))
        yield


class ConsoleGateway:
    """One `a2a-gateway serve` for the console, on a port that survives `restart()`. Starting and stopping
    run in a thread: they wait on the process, and the test's loop also runs the workers."""

    def __init__(
        self,
        log_dir: Path,
        temporal_address: str,
        redis_url: str,
        agents: Path,
        name: str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._log_dir = log_dir
        self._temporal_address = temporal_address
        self._redis_url = redis_url
        self._env = {
            "A2A_CONFIG": str(agents),
            "A2A_GATEWAY_TEMPORAL_UI_URL": TEMPORAL_UI_URL,
            **(env or {}),
        }
        self._name = name
        self.port = free_port(HOST)
        self.url = f"http://{HOST}:{self.port}"
        self._running: contextlib.ExitStack | None = None
        self.process: GatewayProcess | None = None

    def _start(self) -> None:
        stack = contextlib.ExitStack()
        self.process = stack.enter_context(
            gateway_process(
                self._log_dir,
                temporal_address=self._temporal_address,
                redis_url=self._redis_url,
                task_queue="unused-with-an-agents-file",
                env=self._env,
                name=self._name,
                port=self.port,
            )
        )
        self._running = stack

    def _stop(self) -> None:
        if self._running is not None:
            self._running.close()
            self._running = None

    async def start(self) -> None:
        await asyncio.to_thread(self._start)

    async def stop(self) -> None:
        """SIGTERM: the gateway ends its open streams, then exits."""
        await asyncio.to_thread(self._stop)

    async def restart(self) -> None:
        await self.stop()
        await self.start()


@pytest.fixture(scope="session")
async def console_gateway(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_address: str,
    redis_url: str,
    agents_file: Path,
    console_workers: None,
) -> AsyncIterator[ConsoleGateway]:
    log_dir = tmp_path_factory.mktemp("console-gateway")
    gateway = ConsoleGateway(log_dir, temporal_address, redis_url, agents_file, "console")
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


@pytest.fixture(scope="session")
async def auth_gateway(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_address: str,
    redis_url: str,
    auth_agents_file: Path,
    console_workers: None,
) -> AsyncIterator[ConsoleGateway]:
    """A second gateway for the same agents that wants an API key or a JWT."""
    log_dir = tmp_path_factory.mktemp("console-auth-gateway")
    gateway = ConsoleGateway(
        log_dir,
        temporal_address,
        redis_url,
        auth_agents_file,
        "auth",
        env={JWT_SECRET_ENV: JWT_SECRET},
    )
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium: Playwright's own browsers are never downloaded."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing: apt-get install -y chromium")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(chromium_path), headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def page(
    browser: Browser, console_gateway: ConsoleGateway, request: pytest.FixtureRequest
) -> AsyncIterator[Page]:
    """A fresh browser context (empty localStorage) on the console; its last view is saved as
    `.a2a/test-artifacts/console-<test>.png`, whether the test passed or not."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = request.node.name.removeprefix("test_console_")
        with contextlib.suppress(Exception):
            await page.screenshot(path=ARTIFACTS / f"console-{name}.png", full_page=True)
        await context.close()


@pytest.fixture(scope="session")
async def gateway_http(console_gateway: ConsoleGateway) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP to the console's gateway, for checking what the page shows against the gateway's own answers."""
    async with httpx.AsyncClient(timeout=10) as client:
        yield client
