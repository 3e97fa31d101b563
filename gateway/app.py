"""The gateway's ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from temporalio.client import Client, Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from gateway.auth import Authenticator, Principal
from gateway.card import build_agent_card
from gateway.handlers import Handlers
from gateway.hub import Hub
from gateway.jsonrpc import (
    BodyTooLarge,
    Dispatcher,
    Outcome,
    error_http_response,
    json_response,
    read_body,
)
from gateway.limits import RateLimiter
from gateway.metrics import CONTENT_TYPE, OK, GatewayMetrics
from gateway.pipelined import PipelinedReader, pipelined_address
from gateway.push import PushRegistry, Resolver, system_resolver
from gateway.settings import GatewaySettings
from gateway.store import TaskStore
from gateway.streams import BrowserRenderer, ErrorStream, EventStream, Streams, parse_last_event_id
from gateway.ws import serve_feed
from protocol import (
    A2AError,
    AgentsConfig,
    AgentsConfigError,
    ForbiddenError,
    InternalError,
    MethodNotFoundError,
    PayloadTooLargeError,
    ServerBusyError,
    TaskNotFoundError,
    UnauthenticatedError,
    WebhookPolicy,
    error_response,
)
from protocol.telemetry import annotate_task, remember_span, tracing_enabled

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
# The web console: static HTML, CSS and JavaScript modules, no build step.
UI_DIRECTORY = Path(__file__).with_name("ui")
# A caller's `traceparent` is continued; its `baggage` is not taken: it would ride into every workflow's
# history and activity.
_TRACE_CONTEXT = TraceContextTextMapPropagator()


@dataclass
class Runtime:
    """What the lifespan opens and the routes use."""

    temporal: Client
    redis: Redis
    # Agent name -> its methods and its JSON-RPC endpoint.
    handlers: dict[str, Handlers]
    dispatchers: dict[str, Dispatcher]
    streams: Streams
    rate_limiter: RateLimiter | None
    # The snapshot reads' own connection (None: they go through `redis`).
    reader: PipelinedReader | None
    # An OpenTelemetry SDK records spans.
    traced: bool


def create_app(settings: GatewaySettings, *, resolver: Resolver = system_resolver) -> Starlette:
    """The gateway for the agents of `settings` (raises AgentsConfigError for a bad agents file or
    auth section). `resolver` looks webhook hosts up (tests swap it)."""
    gateway = _Gateway(settings, resolver)
    return Starlette(
        routes=[
            Route("/", gateway.rpc, methods=["POST"]),
            Route("/.well-known/agent.json", gateway.agent_card, methods=["GET"]),
            Route("/agents/{agent}", gateway.rpc, methods=["POST"]),
            Route("/agents/{agent}/.well-known/agent.json", gateway.agent_card, methods=["GET"]),
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
            Mount("/ui", StaticFiles(directory=UI_DIRECTORY, html=True), name="ui"),
        ],
        middleware=[
            *_middleware(settings, gateway.api_key_header),
            Middleware(_RpcFastPath, gateway=gateway),
        ],
        lifespan=gateway.lifespan,
    )


class _Gateway:
    """The routes, and what they share: settings, auth and cards from the start, the runtime (Temporal,
    Redis, streams) while the lifespan runs. A route with `{agent}` serves that agent, else the
    default one."""

    def __init__(self, settings: GatewaySettings, resolver: Resolver) -> None:
        self._settings = settings
        self._resolver = resolver
        self._agents = settings.agents_config()
        self._default = self._agents.default_agent
        self._auth = Authenticator(self._agents.auth, timeout=settings.call_timeout_seconds)
        try:
            self._policy = WebhookPolicy.parse(settings.push_allow_http, settings.push_allowlist)
        except ValueError as err:
            raise AgentsConfigError(f"A2A_PUSH_ALLOWLIST: {err}") from err
        self._cards = _Cards(self._agents, settings.rpc_url(), self._auth)
        self._metrics = GatewayMetrics()
        self._runtime: Runtime | None = None

    def endpoint_agent(self, path: str) -> str | None:
        """The agent whose JSON-RPC endpoint `path` is (`/` or `/agents/{agent}`), else None."""
        if path == "/":
            return self._default
        name = path.removeprefix("/agents/")
        if name != path and name and "/" not in name:
            return name
        return None

    @property
    def api_key_header(self) -> str:
        auth = self._agents.auth
        return auth.api_key_header if auth is not None else "X-API-Key"

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        runtime = await _start(
            self._settings,
            self._agents,
            self._policy,
            self._resolver,
            self._metrics,
            tenancy=self._auth.enabled,
        )
        self._runtime = runtime
        hub = runtime.streams.hub
        loop = asyncio.get_running_loop()
        # Called from the server's signal handler: open streams end now rather than hold shutdown.
        app.state.end_streams = lambda: loop.call_soon_threadsafe(hub.close_subscriptions)
        try:
            yield
        finally:
            self._runtime = None
            await hub.close()
            if runtime.reader is not None:
                runtime.reader.close()
            await runtime.redis.aclose()
            await self._auth.aclose()

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("the gateway's lifespan has not started")
        return self._runtime

    async def rpc(self, request: Request) -> ASGIApp:
        return await self.rpc_for(request, request.path_params.get("agent", self._default))

    async def rpc_for(self, request: Request, agent: str) -> ASGIApp:
        """A JSON-RPC request to `agent`, as a server span (continuing the caller's `traceparent`)
        named after its method, and counted by method and outcome."""
        dispatcher = self.runtime.dispatchers.get(agent)
        if dispatcher is None:
            return _unknown_agent(agent, self._cards.public)
        started = time.perf_counter()
        outcome = Outcome()
        # Untraced, a span is only worth its cost when the caller sent a trace to continue: its ids
        # then go on the request's log lines.
        with (
            tracer.start_as_current_span(
                "jsonrpc",
                context=_TRACE_CONTEXT.extract(request.headers),
                kind=trace.SpanKind.SERVER,
                attributes={"rpc.system": "jsonrpc", "a2a.agent": agent},
            )
            if self.runtime.traced or "traceparent" in request.headers
            else contextlib.nullcontext(trace.INVALID_SPAN)
        ) as span:
            remember_span(span)
            try:
                response = await self._rpc(request, agent, dispatcher, outcome)
            except BaseException:
                # The client went away mid-body, or the request was cancelled: not a success.
                if outcome.code == OK:
                    outcome.failed(InternalError())
                raise
            finally:
                _end_rpc_span(span, outcome)
                self._metrics.observe_request(outcome.method, outcome.code, started)
        if (
            isinstance(response, EventStream)
            and outcome.method == "message/stream"
            and "last-event-id" not in request.headers
        ):
            response.first_token_from = started
        return response

    async def _rpc(
        self, request: Request, agent: str, dispatcher: Dispatcher, outcome: Outcome
    ) -> ASGIApp:
        limit = self._settings.max_body_bytes
        try:
            principal = await self._admit(request, agent)
            body = await read_body(request, limit)
        except BodyTooLarge:
            error = PayloadTooLargeError(
                f"Request payload validation error: body exceeds {limit} bytes"
            )
            outcome.failed(error)
            # The rest of the body is never read, so the connection cannot carry another request.
            return error_http_response(error_response(None, error), error, {"connection": "close"})
        except A2AError as err:
            outcome.failed(err)
            return self._refused(err)
        response = await dispatcher.respond(
            body, principal, request.headers.get("last-event-id"), outcome
        )
        if isinstance(response, ErrorStream):
            outcome.code = str(response.code)
        elif isinstance(response, EventStream):
            annotate_task(response.task_id)
        return response

    async def task_events(self, request: Request) -> ASGIApp:
        with tracer.start_as_current_span(
            "GET /tasks/{task_id}/events",
            context=_TRACE_CONTEXT.extract(request.headers),
            kind=trace.SpanKind.SERVER,
        ) as span:
            remember_span(span)
            annotate_task(request.path_params["task_id"])
            try:
                principal = await self._admit(request, None, browser=True)
            except A2AError as err:
                return self._refused(err)
            handlers = self.runtime.handlers[self._default]
            return await _task_events(self.runtime.streams, handlers, principal, request)

    async def metrics(self, request: Request) -> Response:
        return Response(self._metrics.render(), media_type=CONTENT_TYPE)

    async def ws(self, websocket: WebSocket) -> None:
        """The multiplexed feed for dashboards (`gateway/ws.py`), with the browser streams' auth."""
        await serve_feed(
            websocket,
            admit=lambda: self._admit(websocket, None, browser=True),
            refused=self._refused,
            streams=self.runtime.streams,
            handlers=self.runtime.handlers[self._default],
        )

    async def console_config(self, request: Request) -> Response:
        """What the web console needs: the agents (their public cards and endpoints), the default one,
        where the Temporal UI is, and how to send a credential when auth is on."""
        settings = self._settings
        agents = [
            {"name": name, "endpoint": f"/agents/{name}", "card": card}
            for name, card in self._cards.public.items()
        ]
        return json_response(
            {
                "agents": agents,
                "defaultAgent": self._default,
                "temporalUiUrl": settings.temporal_ui_url,
                "temporalNamespace": settings.temporal_namespace,
                "auth": {
                    "enabled": self._auth.enabled,
                    "apiKeyHeader": self.api_key_header,
                    # The card's schemes as enforced: "apiKey" and/or "bearer" (a JWT).
                    "schemes": sorted((self._auth.security() or ({}, []))[0]),
                },
            }
        )

    async def agent_card(self, request: Request) -> Response:
        named = request.path_params.get("agent")
        if named is None:
            return json_response(self._cards.root)
        card = self._cards.public.get(named)
        if card is None:
            return _unknown_agent(named, self._cards.public)
        return json_response(card)

    async def extended_card(self, request: Request) -> Response:
        named = request.path_params.get("agent")
        agent = named or self._default
        if agent not in self._cards.public:
            return _unknown_agent(agent, self._cards.public)
        if not self._auth.enabled:
            error = MethodNotFoundError(
                "No authenticated extended card: this gateway authenticates no one "
                "(supportsAuthenticatedExtendedCard is false)"
            )
            return json_response(error_response(None, error), 404)
        try:
            await self._admit(request, agent)
        except A2AError as err:
            return self._refused(err)
        return json_response(self._cards.extended[agent] if named else self._cards.extended_root)

    async def healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        # Probes every few seconds would each be a trace of their own.
        with suppress_instrumentation():
            return await _readiness(self.runtime, self._settings.call_timeout_seconds)

    async def _admit(
        self, request: HTTPConnection, agent: str | None, *, browser: bool = False
    ) -> Principal:
        """The caller, once authenticated, allowed to use `agent` and within its rate. Browser
        streams may carry the credential in the query string (EventSource cannot set headers)."""
        limiter = self.runtime.rate_limiter
        address = f"address:{request.client.host if request.client else 'unknown'}"
        try:
            principal = await self._auth.authenticate(
                request.headers, request.query_params if browser else None
            )
        except UnauthenticatedError:
            # Failed attempts count against the client's address: guessing keys is rate limited.
            if limiter is not None:
                await limiter.admit(address)
            raise
        if agent is not None and not principal.may_use(agent):
            raise ForbiddenError(f"Forbidden: this credential may not use agent '{agent}'")
        if limiter is not None:
            await limiter.admit(principal.id if self._auth.enabled else address)
        return principal

    def _refused(self, err: A2AError) -> Response:
        headers = None
        if isinstance(err, UnauthenticatedError):
            headers = {"www-authenticate": self._auth.www_authenticate()}
        return error_http_response(error_response(None, err), err, headers)


def _end_rpc_span(span: trace.Span, outcome: Outcome) -> None:
    span.update_name(outcome.method)
    span.set_attribute("rpc.method", outcome.method)
    if outcome.code != OK:
        span.set_attribute("rpc.jsonrpc.error_code", int(outcome.code))
        # Only the server's own failures are span errors; a client's bad request is not.
        if outcome.code in {str(InternalError.code), str(ServerBusyError.code)}:
            span.set_status(trace.StatusCode.ERROR)


async def _task_events(
    streams: Streams, handlers: Handlers, principal: Principal, request: Request
) -> ASGIApp:
    """The browser view of a task's events, for `EventSource` (which resends `Last-Event-ID`)."""
    task_id = request.path_params["task_id"]
    raw = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
    try:
        position = parse_last_event_id(raw) or "0"
        await handlers.authorize(task_id, principal)
        lease = streams.lease(handlers.scope(principal))
    except TaskNotFoundError as err:
        return json_response(error_response(None, err), 404)
    except A2AError as err:
        if err.http_status == 200:
            return json_response(error_response(None, err), 400)
        return error_http_response(error_response(None, err), err)
    except (RedisError, OSError, TimeoutError, RPCError) as err:
        logger.warning("Task %s's owner could not be checked: %s", task_id, err)
        return _unavailable(
            InternalError("Internal error: the task's owner could not be checked; retry")
        )
    try:
        stream = await streams.open(lease, task_id, position, BrowserRenderer())
    except TaskNotFoundError as err:
        lease.release()
        return json_response(error_response(None, err), 404)
    except InternalError as err:
        lease.release()
        return _unavailable(err)
    except BaseException:
        lease.release()
        raise
    if stream.finished and not stream.first:
        # Nothing after Last-Event-ID and the task is over: 204 tells EventSource to stop.
        await stream.close()
        return Response(status_code=204)
    return stream


class _Cards:
    """Each agent's public card and, with auth on, its authenticated extended card: at its own endpoint
    `/agents/<name>` (`url`), and for the default agent also at the root, with the root `url`, which
    `POST /` serves."""

    def __init__(self, agents: AgentsConfig, root_url: str, auth: Authenticator) -> None:
        security = auth.security()
        default = agents.default_agent
        self.public: dict[str, dict[str, Any]] = {}
        self.extended: dict[str, dict[str, Any]] = {}
        for name, agent in agents.agents.items():
            url = _agent_url(root_url, name)
            self.public[name] = build_agent_card(name, agent, url, security=security).to_wire()
            if security is not None:
                self.extended[name] = build_agent_card(
                    name, agent, url, security=security, extended=True
                ).to_wire()
        self.root = build_agent_card(
            default, agents.agents[default], root_url, security=security
        ).to_wire()
        self.extended_root = {**self.extended.get(default, {}), "url": root_url}


class _RpcFastPath:
    """JSON-RPC POSTs go straight to `_Gateway.rpc_for`, past Starlette's router and exception
    middleware (a fifth of a `tasks/get`'s CPU); any other request, and a POST to a path that is not
    an endpoint, goes on to the routes. Innermost of the middleware, so CORS still applies; Starlette's
    ServerErrorMiddleware still answers 500 to an exception."""

    def __init__(self, app: ASGIApp, gateway: _Gateway) -> None:
        self._app = app
        self._gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            agent = self._gateway.endpoint_agent(_route_path(scope))
            if agent is not None:
                response = await self._gateway.rpc_for(Request(scope, receive), agent)
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _agent_url(root_url: str, name: str) -> str:
    return f"{root_url.rstrip('/')}/agents/{name}"


def _middleware(settings: GatewaySettings, api_key_header: str) -> list[Middleware]:
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


async def _start(
    settings: GatewaySettings,
    agents: AgentsConfig,
    policy: WebhookPolicy,
    resolver: Resolver,
    metrics: GatewayMetrics,
    *,
    tenancy: bool,
) -> Runtime:
    """Connect to Temporal and Redis and build each agent's endpoint."""
    # With tracing on, workflow starts, updates and queries carry the request's span context, and the
    # workers' spans join its trace.
    traced = tracing_enabled()
    interceptors: list[Interceptor] = [TracingInterceptor()] if traced else []
    temporal = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        interceptors=interceptors,
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
    # Traced, the snapshot reads go through redis-py, whose instrumentation makes their spans.
    address = None if traced else pipelined_address(settings.redis_url)
    reader = None if address is None else PipelinedReader(address)
    store = TaskStore(
        redis,
        ttl_seconds=settings.retention_seconds,
        timeout=settings.call_timeout_seconds,
        reader=reader,
    )
    push = PushRegistry(
        redis,
        temporal,
        policy,
        settings.push_policy(),
        ttl_seconds=settings.retention_seconds,
        timeout=settings.call_timeout_seconds,
        max_configs=settings.max_push_configs_per_task,
        resolver=resolver,
    )
    handlers = {
        name: Handlers(
            settings,
            temporal,
            store,
            push,
            agent=name,
            kind=agent.kind,
            task_queue=agent.task_queue,
            tenancy=tenancy,
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
        metrics=metrics,
        max_streams_per_principal=settings.max_streams_per_principal if tenancy else None,
    )
    dispatchers = {}
    for name, agent_handlers in handlers.items():
        agent_handlers.streams = streams
        dispatchers[name] = Dispatcher(agent_handlers.table(), agent_handlers.stream_table())
    rate_limiter = None
    if settings.rate_limit_per_second > 0:
        rate_limiter = RateLimiter(
            redis,
            per_second=settings.rate_limit_per_second,
            burst=settings.rate_limit_burst,
            timeout=settings.call_timeout_seconds,
        )
    return Runtime(temporal, redis, handlers, dispatchers, streams, rate_limiter, reader, traced)


def _unknown_agent(name: str, known: dict[str, Any]) -> Response:
    error = MethodNotFoundError(
        f"No agent named '{name}' at this gateway; its agents: {', '.join(sorted(known))}"
    )
    return json_response(error_response(None, error), 404)


def _unavailable(error: InternalError) -> Response:
    return json_response(error_response(None, error), 503, {"retry-after": "1"})


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
