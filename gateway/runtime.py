"""What the gateway opens while it runs: its Temporal client, its Redis pool and pub/sub hub, and every
part built on them, wired once at start-up (each part gets what it uses in its constructor)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from temporalio.client import Client, Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter

from config import temporal
from config.agents import AgentsConfig
from config.telemetry import tracing_enabled
from config.webhook_policy import Resolver, WebhookPolicy
from content import ContentStore
from gateway.access.admission import Admission
from gateway.access.auth import Authenticator
from gateway.access.rate_limit import RateLimiter
from gateway.access.tenancy import Tenancy
from gateway.cards import Cards
from gateway.metrics import GatewayMetrics
from gateway.rpc.dispatch import Dispatcher
from gateway.rpc.endpoint import RpcEndpoint
from gateway.rpc.methods import AgentMethods
from gateway.rpc.v1 import V1Methods
from gateway.settings import GatewaySettings
from gateway.streaming.browser import BrowserStreams
from gateway.streaming.feed import TurnEnds
from gateway.streaming.hub import Hub
from gateway.streaming.log import EventLog
from gateway.streaming.streams import Streams
from gateway.tasks.listing import TaskIndex
from gateway.tasks.pipelined import PipelinedReader
from gateway.tasks.push_configs import PushConfigs
from gateway.tasks.starts import Route
from gateway.tasks.store import TaskStore
from gateway.tasks.temporal import TemporalTasks
from workflows.names import task_queue_for


@dataclass
class Runtime:
    temporal: Client
    redis: Redis
    hub: Hub
    streams: Streams
    tenancy: Tenancy
    admission: Admission
    rpc: RpcEndpoint
    browser: BrowserStreams
    # The snapshot reads' own connection (none on a cluster or behind Sentinel).
    reader: PipelinedReader | None

    async def close(self) -> None:
        await self.hub.close()
        if self.reader is not None:
            self.reader.close()
        await self.redis.aclose()


@dataclass(frozen=True)
class Parts:
    """What the gateway has before it connects: settings, agents, auth, metrics, the webhook policy."""

    settings: GatewaySettings
    agents: AgentsConfig
    auth: Authenticator
    metrics: GatewayMetrics
    policy: WebhookPolicy
    resolver: Resolver
    cards: Cards


async def open_runtime(parts: Parts) -> Runtime:
    """Connect to Temporal and Redis and build each agent's endpoint."""
    settings = parts.settings
    traced = tracing_enabled()
    temporal = await _temporal(settings, traced)
    redis, reader, hub = _redis(settings, traced)
    timeout = settings.call_timeout_seconds
    store = TaskStore(redis, reader=reader, ttl_seconds=settings.retention_seconds, timeout=timeout)
    log = EventLog(redis, timeout=timeout)
    await hub.start(connect_wait=timeout)
    contents = ContentStore(redis, ttl_seconds=settings.retention_seconds)
    turns = TurnEnds(hub, log, timeout=timeout)
    tasks = TemporalTasks(temporal, store, contents, turns, settings, settings.push_policy())
    tenancy = Tenancy(tasks, enabled=parts.auth.enabled)
    streams = Streams(
        hub,
        log,
        max_streams=settings.max_streams,
        keepalive_seconds=settings.stream_keepalive_seconds,
        write_timeout_seconds=settings.stream_write_timeout_seconds,
        find_task=tasks.current_task,
        timeout=timeout,
        metrics=parts.metrics,
        max_streams_per_principal=settings.max_streams_per_principal if tenancy.enabled else None,
    )
    push = PushConfigs(
        redis,
        parts.policy,
        ttl_seconds=settings.retention_seconds,
        timeout=timeout,
        max_configs=settings.max_push_configs_per_task,
        resolver=parts.resolver,
    )
    index = TaskIndex(redis, timeout=timeout)
    dispatchers = {}
    for name, agent in parts.agents.agents.items():
        methods = AgentMethods(
            Route(name, agent.task_queue or task_queue_for(name)),
            agent.kind,
            tasks=tasks,
            store=store,
            log=log,
            push=push,
            streams=streams,
            tenancy=tenancy,
        )
        dispatchers[name] = _dispatcher(methods, index, tenancy, parts.cards, name)
    admission = Admission(parts.auth, _rate_limiter(settings, redis))
    rpc = RpcEndpoint(
        dispatchers, admission, parts.metrics, max_body_bytes=settings.max_body_bytes, traced=traced
    )
    browser = BrowserStreams(admission, tenancy, streams)
    return Runtime(temporal, redis, hub, streams, tenancy, admission, rpc, browser, reader)


async def _temporal(settings: GatewaySettings, traced: bool) -> Client:
    # With tracing on, workflow starts, updates and queries carry the request's span context, and the
    # workers' spans join its trace.
    interceptors: list[Interceptor] = [TracingInterceptor()] if traced else []
    connection = temporal.load(settings.temporal_address, settings.temporal_namespace)
    return await connection.connect(
        data_converter=pydantic_data_converter, interceptors=interceptors
    )


def _dispatcher(
    methods: AgentMethods, index: TaskIndex, tenancy: Tenancy, cards: Cards, agent: str
) -> Dispatcher:
    """An agent's methods in every version: slash-style 0.2.5 and 0.3, PascalCase 1.0, and 1.0 over
    HTTP+JSON."""
    v1, rest = (
        V1Methods(
            methods,
            index=index,
            tenancy=tenancy,
            extended_card=lambda: cards.extended_v1(agent),
            envelope=envelope,
        )
        for envelope in (True, False)
    )
    return Dispatcher(
        {**methods.table(), **methods.v03_table(lambda: cards.extended_v03(agent))},
        methods.stream_table(),
        v1_handlers=v1.table(),
        v1_stream_handlers=v1.stream_table(),
        rest_handlers={**rest.table(), **rest.stream_table()},
    )


def _redis(settings: GatewaySettings, traced: bool) -> tuple[Redis, PipelinedReader | None, Hub]:
    """The shared client, the snapshot reads' connection and the pub/sub hub."""
    target = settings.redis_target()
    redis = target.client(max_connections=settings.redis_max_connections)
    # tasks/get of an open task reads Redis on a pipelined connection of its own, which costs the
    # gateway a quarter less CPU than redis-py's GET, and keeps what it read until Redis says it
    # changed (see gateway.tasks.pipelined). A cluster's or a Sentinel's snapshots are read each time
    # with the shared client, which knows where they are.
    plain = not (target.cluster or target.sentinels)
    reader = (
        PipelinedReader(settings.redis_url, traced=traced, cache=settings.snapshot_cache)
        if plain
        else None
    )
    # On a cluster, sharded pub/sub: each task's channel on the node that serves its slot.
    hub = Hub(
        partial(target.dedicated_pool, redis, protocol=2),
        buffer_events=settings.stream_buffer_events,
        cluster=cast(RedisCluster, redis) if target.cluster else None,
        node_pools=partial(target.node_pool, protocol=2),
    )
    return redis, reader, hub


def _rate_limiter(settings: GatewaySettings, redis: Redis) -> RateLimiter | None:
    if settings.rate_limit_per_second <= 0:
        return None
    return RateLimiter(
        redis,
        per_second=settings.rate_limit_per_second,
        burst=settings.rate_limit_burst,
        timeout=settings.call_timeout_seconds,
    )
