"""The gateway's ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from gateway.card import build_agent_card
from gateway.handlers import Handlers
from gateway.hub import Hub
from gateway.jsonrpc import BodyTooLarge, Dispatcher, json_response, read_body
from gateway.settings import GatewaySettings
from gateway.store import TaskStore
from gateway.streams import BrowserRenderer, Streams, parse_last_event_id
from protocol import (
    A2AError,
    AgentsConfig,
    InternalError,
    InvalidRequestError,
    MethodNotFoundError,
    TaskNotFoundError,
    error_response,
)

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What the lifespan opens and the routes use."""

    temporal: Client
    redis: Redis
    # Agent name -> its JSON-RPC endpoint.
    dispatchers: dict[str, Dispatcher]
    streams: Streams


def create_app(settings: GatewaySettings) -> Starlette:
    """The gateway for the agents of `settings` (raises AgentsConfigError for a bad agents file)."""
    agents = settings.agents_config()
    default = agents.default_agent
    root_card, cards = _cards(agents, settings.rpc_url())
    runtime: Runtime | None = None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal runtime
        runtime = await _start(settings, agents)
        hub = runtime.streams.hub
        loop = asyncio.get_running_loop()
        # Called from the server's signal handler: open streams end now rather than hold shutdown.
        app.state.end_streams = lambda: loop.call_soon_threadsafe(hub.close_subscriptions)
        try:
            yield
        finally:
            redis, runtime = runtime.redis, None
            await hub.close()
            await redis.aclose()

    def current() -> Runtime:
        if runtime is None:
            raise RuntimeError("the gateway's lifespan has not started")
        return runtime

    async def rpc(request: Request) -> ASGIApp:
        return await _rpc(request, current().dispatchers[default], settings.max_body_bytes)

    async def agent_rpc(request: Request) -> ASGIApp:
        dispatcher = current().dispatchers.get(request.path_params["agent"])
        if dispatcher is None:
            return _unknown_agent(request.path_params["agent"], cards)
        return await _rpc(request, dispatcher, settings.max_body_bytes)

    async def task_events(request: Request) -> ASGIApp:
        return await _task_events(current().streams, request)

    async def agent_card(request: Request) -> Response:
        return json_response(root_card)

    async def named_agent_card(request: Request) -> Response:
        card = cards.get(request.path_params["agent"])
        if card is None:
            return _unknown_agent(request.path_params["agent"], cards)
        return json_response(card)

    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        return await _readiness(current(), settings.call_timeout_seconds)

    return Starlette(
        routes=[
            Route("/", rpc, methods=["POST"]),
            Route("/.well-known/agent.json", agent_card, methods=["GET"]),
            Route("/agents/{agent}", agent_rpc, methods=["POST"]),
            Route("/agents/{agent}/.well-known/agent.json", named_agent_card, methods=["GET"]),
            Route("/tasks/{task_id}/events", task_events, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ],
        middleware=_middleware(settings),
        lifespan=lifespan,
    )


async def _task_events(streams: Streams, request: Request) -> ASGIApp:
    """The browser view of a task's events, for `EventSource` (which resends `Last-Event-ID`)."""
    task_id = request.path_params["task_id"]
    raw = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
    try:
        position = parse_last_event_id(raw) or "0"
        lease = streams.lease()
    except A2AError as err:
        status = err.http_status if err.http_status != 200 else 400
        return json_response(error_response(None, err), status, _retry_after(status))
    try:
        stream = await streams.open(lease, task_id, position, BrowserRenderer())
    except TaskNotFoundError as err:
        return json_response(error_response(None, err), 404)
    except InternalError as err:
        return json_response(error_response(None, err), 503, _retry_after(503))
    if stream.finished and not stream.first:
        # Nothing after Last-Event-ID and the task is over: 204 tells EventSource to stop.
        await stream.close()
        return Response(status_code=204)
    return stream


def _cards(agents: AgentsConfig, root_url: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The root card (the default agent at `root_url`, which `POST /` serves) and each agent's card,
    whose `url` is its own endpoint `/agents/<name>`."""
    default = agents.default_agent
    root_card = build_agent_card(default, agents.agents[default], root_url).to_wire()
    cards = {
        name: build_agent_card(name, agent, f"{root_url.rstrip('/')}/agents/{name}").to_wire()
        for name, agent in agents.agents.items()
    }
    return root_card, cards


def _middleware(settings: GatewaySettings) -> list[Middleware]:
    if not settings.cors_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Authorization", "Last-Event-ID"],
        )
    ]


async def _start(settings: GatewaySettings, agents: AgentsConfig) -> Runtime:
    """Connect to Temporal and Redis and build each agent's endpoint."""
    temporal = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )
    # No socket timeout: on Python 3.11 redis-py enforces it with `asyncio.wait_for`, which can swallow
    # a cancel, and a cancelled XREAD BLOCK would then hold its caller until the block ends. Every
    # call carries its own deadline (`asyncio.timeout`) instead.
    redis = Redis.from_pool(
        BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=settings.redis_max_connections,
            timeout=None,
            socket_timeout=None,
        )
    )
    store = TaskStore(
        redis, ttl_seconds=settings.retention_seconds, timeout=settings.call_timeout_seconds
    )
    handlers = {
        name: Handlers(
            settings, temporal, store, agent=name, kind=agent.kind, task_queue=agent.task_queue
        )
        for name, agent in agents.agents.items()
    }
    hub = Hub(settings.redis_url, buffer_events=settings.stream_buffer_events)
    await hub.start(connect_wait=settings.call_timeout_seconds)
    streams = Streams(
        hub,
        store,
        max_streams=settings.max_streams,
        keepalive_seconds=settings.stream_keepalive_seconds,
        write_timeout_seconds=settings.stream_write_timeout_seconds,
        find_task=handlers[agents.default_agent].current_task,
        timeout=settings.call_timeout_seconds,
    )
    dispatchers = {}
    for name, agent_handlers in handlers.items():
        agent_handlers.streams = streams
        dispatchers[name] = Dispatcher(agent_handlers.table(), agent_handlers.stream_table())
    return Runtime(temporal, redis, dispatchers, streams)


async def _rpc(request: Request, dispatcher: Dispatcher, max_body_bytes: int) -> ASGIApp:
    try:
        body = await read_body(request, max_body_bytes)
    except BodyTooLarge:
        error = InvalidRequestError(
            f"Request payload validation error: body exceeds {max_body_bytes} bytes"
        )
        return json_response(error_response(None, error))
    return await dispatcher.respond(body, request.headers.get("last-event-id"))


def _unknown_agent(name: str, known: dict[str, Any]) -> Response:
    error = MethodNotFoundError(
        f"No agent named '{name}' at this gateway; its agents: {', '.join(sorted(known))}"
    )
    return json_response(error_response(None, error), 404)


def _retry_after(status: int) -> dict[str, str] | None:
    return {"retry-after": "1"} if status == 503 else None


async def _readiness(runtime: Runtime, deadline_seconds: float) -> Response:
    failing = await _failing_dependencies(runtime, deadline_seconds)
    if failing:
        return json_response({"status": "unavailable", "failing": failing}, 503)
    return json_response({"status": "ok"})


async def _failing_dependencies(runtime: Runtime, deadline_seconds: float) -> list[str]:
    async def redis_ok() -> bool:
        async with asyncio.timeout(deadline_seconds):
            return bool(await runtime.redis.ping())

    async def temporal_ok() -> bool:
        async with asyncio.timeout(deadline_seconds):
            return await runtime.temporal.service_client.check_health()

    checks = {"redis": redis_ok(), "temporal": temporal_ok()}
    results = await asyncio.gather(*checks.values(), return_exceptions=True)
    return [name for name, ok in zip(checks, results, strict=True) if ok is not True]
