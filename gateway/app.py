"""The gateway's ASGI application: the routes, and the lifespan that opens what they use
(`gateway.runtime`). Every route delegates to the sub-package that serves it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from opentelemetry.instrumentation.utils import suppress_instrumentation
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp
from starlette.websockets import WebSocket

from config.agents import AgentsConfigError
from config.webhook_policy import Resolver, WebhookPolicy, system_resolver
from gateway.access.auth import Authenticator
from gateway.cards import Cards
from gateway.metrics import CONTENT_TYPE, GatewayMetrics
from gateway.probes import healthy, readiness
from gateway.responses import json_response, unknown_agent
from gateway.rpc.endpoint import RpcEndpoint, RpcRoutes
from gateway.runtime import Parts, Runtime, open_runtime
from gateway.settings import GatewaySettings
from gateway.streaming.ws import serve_feed
from gateway.ui.console import STATIC, console_config
from protocol import A2AError, MethodNotFoundError, error_response


def create_app(settings: GatewaySettings, *, resolver: Resolver = system_resolver) -> Starlette:
    """The gateway for the agents of `settings` (raises AgentsConfigError for a bad agents file or
    auth section). `resolver` looks webhook hosts up (tests swap it)."""
    gateway = _Gateway(settings, resolver)
    return Starlette(
        routes=[
            Route("/.well-known/agent.json", gateway.agent_card, methods=["GET"]),
            Route("/agents/{agent}/.well-known/agent.json", gateway.agent_card, methods=["GET"]),
            Route("/.well-known/agent-card.json", gateway.combined_card, methods=["GET"]),
            Route(
                "/agents/{agent}/.well-known/agent-card.json",
                gateway.combined_card,
                methods=["GET"],
            ),
            Route("/agent/authenticatedExtendedCard", gateway.extended_card, methods=["GET"]),
            Route(
                "/agents/{agent}/agent/authenticatedExtendedCard",
                gateway.extended_card,
                methods=["GET"],
            ),
            Route("/tasks/{task_id}/events", gateway.task_events, methods=["GET"]),
            Route("/healthz", gateway.healthz, methods=["GET"]),
            Route("/readyz", gateway.readyz, methods=["GET"]),
            *([Route("/metrics", gateway.metrics, methods=["GET"])] if settings.metrics else []),
            WebSocketRoute("/ws", gateway.ws),
            Route("/ui/config.json", gateway.console_config, methods=["GET"]),
            Mount("/ui", StaticFiles(directory=STATIC, html=True), name="ui"),
        ],
        middleware=[
            *_cors(settings, gateway.parts.auth.api_key_header),
            Middleware(
                RpcRoutes,
                default_agent=gateway.parts.agents.default_agent,
                endpoint=gateway.rpc_endpoint,
            ),
        ],
        lifespan=gateway.lifespan,
    )


class _Gateway:
    """The routes, and what they share: settings, auth and cards from the start, the runtime (Temporal,
    Redis, streams) while the lifespan runs. A route with `{agent}` serves that agent, else the
    default one."""

    def __init__(self, settings: GatewaySettings, resolver: Resolver) -> None:
        agents = settings.agents_config()
        auth = Authenticator(agents.auth, timeout=settings.call_timeout_seconds)
        try:
            policy = WebhookPolicy.parse(settings.push_allow_http, settings.push_allowlist)
        except ValueError as err:
            raise AgentsConfigError(f"A2A_PUSH_ALLOWLIST: {err}") from err
        self._cards = Cards(agents, settings.rpc_url(), auth.security())
        self.parts = Parts(settings, agents, auth, GatewayMetrics(), policy, resolver, self._cards)
        self._default = agents.default_agent
        self._runtime: Runtime | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        runtime = await open_runtime(self.parts)
        self._runtime = runtime
        hub = runtime.hub
        loop = asyncio.get_running_loop()
        # Called from the server's signal handler: open streams end now rather than hold shutdown.
        app.state.end_streams = lambda: loop.call_soon_threadsafe(hub.close_subscriptions)
        try:
            yield
        finally:
            self._runtime = None
            await runtime.close()
            await self.parts.auth.aclose()

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("the gateway's lifespan has not started")
        return self._runtime

    def rpc_endpoint(self) -> RpcEndpoint:
        return self.runtime.rpc

    async def task_events(self, request: Request) -> ASGIApp:
        return await self.runtime.browser.task_events(request)

    async def ws(self, websocket: WebSocket) -> None:
        """The multiplexed feed for dashboards (`gateway.streaming.ws`), with the browser streams' auth."""
        admission = self.runtime.admission
        await serve_feed(
            websocket,
            admit=lambda: admission.admit(websocket, None, browser=True),
            refused=admission.refused,
            streams=self.runtime.streams,
            tenancy=self.runtime.tenancy,
        )

    async def metrics(self, request: Request) -> Response:
        return Response(self.parts.metrics.render(), media_type=CONTENT_TYPE)

    async def console_config(self, request: Request) -> Response:
        return json_response(
            console_config(self.parts.settings, self._cards, self.parts.auth, self._default)
        )

    async def agent_card(self, request: Request) -> Response:
        named = request.path_params.get("agent")
        if named is None:
            return json_response(self._cards.root)
        card = self._cards.public.get(named)
        if card is None:
            return unknown_agent(named, self._cards.public)
        return json_response(card)

    async def combined_card(self, request: Request) -> Response:
        """The card 1.0 and 0.3 clients read (`gateway.cards.combined_card`)."""
        named = request.path_params.get("agent")
        if named is None:
            return json_response(self._cards.combined_root)
        card = self._cards.combined.get(named)
        if card is None:
            return unknown_agent(named, self._cards.public)
        return json_response(card)

    async def extended_card(self, request: Request) -> Response:
        named = request.path_params.get("agent")
        agent = named or self._default
        if agent not in self._cards.public:
            return unknown_agent(agent, self._cards.public)
        if not self.parts.auth.enabled:
            error = MethodNotFoundError(
                "No authenticated extended card: this gateway authenticates no one "
                "(supportsAuthenticatedExtendedCard is false)"
            )
            return json_response(error_response(None, error), 404)
        admission = self.runtime.admission
        try:
            await admission.admit(request, agent)
        except A2AError as err:
            return admission.refused(err)
        return json_response(self._cards.extended[agent] if named else self._cards.extended_root)

    async def healthz(self, request: Request) -> Response:
        return healthy()

    async def readyz(self, request: Request) -> Response:
        # Probes every few seconds would each be a trace of their own.
        with suppress_instrumentation():
            runtime = self.runtime
            return await readiness(
                runtime.redis, runtime.temporal, self.parts.settings.call_timeout_seconds
            )


def _cors(settings: GatewaySettings, api_key_header: str) -> list[Middleware]:
    if not settings.cors_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Authorization", "Last-Event-ID", api_key_header],
        )
    ]
