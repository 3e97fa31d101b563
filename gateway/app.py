"""The gateway's ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from gateway.card import build_agent_card
from gateway.handlers import Handlers
from gateway.jsonrpc import BodyTooLarge, Dispatcher, json_response, read_body
from gateway.settings import GatewaySettings
from gateway.store import TaskStore
from protocol import InvalidRequestError, error_response

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What the lifespan opens and the routes use."""

    temporal: Client
    redis: Redis
    dispatcher: Dispatcher


def create_app(settings: GatewaySettings) -> Starlette:
    card = build_agent_card(settings).to_wire()
    runtime: Runtime | None = None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal runtime
        temporal = await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
        )
        # No socket timeout: on Python 3.11 redis-py enforces it with `asyncio.wait_for`, which can swallow
        # a cancel, and a cancelled XREAD BLOCK would then hold its caller until the block ends. Every
        # call carries its own deadline (`asyncio.timeout`) instead.
        redis = Redis.from_url(settings.redis_url, socket_timeout=None)
        store = TaskStore(
            redis, ttl_seconds=settings.retention_seconds, timeout=settings.call_timeout_seconds
        )
        handlers = Handlers(settings, temporal, store)
        runtime = Runtime(temporal, redis, Dispatcher(handlers.table()))
        try:
            yield
        finally:
            runtime = None
            await redis.aclose()

    def current() -> Runtime:
        if runtime is None:
            raise RuntimeError("the gateway's lifespan has not started")
        return runtime

    async def rpc(request: Request) -> Response:
        try:
            body = await read_body(request, settings.max_body_bytes)
        except BodyTooLarge:
            error = InvalidRequestError(
                f"Request payload validation error: body exceeds {settings.max_body_bytes} bytes"
            )
            return json_response(error_response(None, error))
        return json_response(await current().dispatcher.dispatch(body))

    async def agent_card(request: Request) -> Response:
        return json_response(card)

    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        failing = await _failing_dependencies(current(), settings.call_timeout_seconds)
        if failing:
            return json_response({"status": "unavailable", "failing": failing}, 503)
        return json_response({"status": "ok"})

    return Starlette(
        routes=[
            Route("/", rpc, methods=["POST"]),
            Route("/.well-known/agent.json", agent_card, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


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
