"""Gateway process settings, from `A2A_GATEWAY_*` plus Temporal's and Redis's own variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

import config.settings as shared
from config.agents import AgentConfig, AgentsConfig, read_agents_file
from config.redis_clients import RedisTarget
from config.telemetry import LogFormat
from workflows.payloads import PushPolicy


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="A2A_GATEWAY_", extra="ignore", populate_by_name=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # The JSON-RPC URL clients reach (the card's `url`); defaults to http://host:port/.
    public_url: str | None = None
    temporal_address: str = shared.temporal_address("A2A_GATEWAY_")
    temporal_namespace: str = shared.temporal_namespace("A2A_GATEWAY_")
    redis_url: str = shared.redis_url("A2A_GATEWAY_")
    redis_cluster: bool = shared.redis_cluster("A2A_GATEWAY_")
    redis_sentinels: Annotated[list[str], NoDecode] = shared.redis_sentinels("A2A_GATEWAY_")
    redis_sentinel_master: str | None = shared.redis_sentinel_master("A2A_GATEWAY_")
    # The agents file (TOML, config/agents.py); without one, the single agent described below.
    config: Path | None = shared.agents_file("A2A_GATEWAY_")
    agent: str = "echo"
    # Defaults to the agent's own queue (`a2a-agent-<agent>`); must match the worker's.
    task_queue: str | None = None
    agent_name: str = "Echo Agent"
    agent_description: str = "Replies with the text it receives, as a streamed artifact."
    agent_version: str = "0.1.0"
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # A blocking message/send that waits longer than this returns the task as it is (still working).
    blocking_timeout_seconds: float = Field(default=600.0, gt=0)
    # Deadline on each Redis and Temporal call that is not a wait for the agent.
    call_timeout_seconds: float = Field(default=10.0, gt=0)
    # A turn whose worker has not heartbeated for this long is retried on another worker (workers
    # heartbeat every A2A_WORKER_HEARTBEAT_SECONDS, a third of this by default). Heartbeats are for
    # liveness only (cancels reach turns over Redis), and each is a write in Temporal: at 1,000
    # running turns, one every 10 s cost the dev server a fifth of a core.
    agent_heartbeat_timeout_seconds: float = Field(default=90.0, gt=0)
    max_agent_attempts: int = Field(default=5, ge=1)
    # Admission: task starts and messages this process may have waiting on Temporal at once, and how
    # long a send waits for a place before it is answered -32000 "server busy" with Retry-After.
    max_pending_starts: int = Field(default=64, ge=1)
    admission_wait_seconds: float = Field(default=2.0, gt=0)
    # A task's workflow run whose history grows past this continues as new (same task, same id).
    workflow_history_max_bytes: int = Field(default=2 * 1024 * 1024, ge=16 * 1024)
    # A task whose first message does not reach its workflow this long after the start ends failed.
    first_message_timeout_seconds: float = Field(default=60.0, gt=0)
    # Snapshots refilled from the workflow expire after this long (as the worker's retention).
    retention_seconds: int = Field(default=7 * 24 * 3600, ge=1)
    # The Temporal UI's address, for the web console's links to a task's workflow (none: no links).
    temporal_ui_url: str | None = None
    # Serve Prometheus metrics at GET /metrics (on the gateway's own port).
    metrics: bool = True
    log_format: LogFormat = shared.log_format("A2A_GATEWAY_")
    # One log line per HTTP request (uvicorn's access log). Off by default, as gunicorn's: it costs a
    # quarter of the CPU of a `tasks/get`, and /metrics counts requests by method and outcome.
    access_log: bool = False
    # Keep the open tasks' snapshots tasks/get read while Redis tracks them (RESP3 CLIENT TRACKING on
    # the one server; gateway.tasks.pipelined). Off for a Redis proxy that passes CLIENT TRACKING on
    # but does not deliver its invalidations.
    snapshot_cache: bool = True
    # Set A2AContextId / A2AAgent / A2AState on workflows; the Temporal namespace must have them registered.
    search_attributes: bool = True
    # Streams (message/stream, tasks/resubscribe, GET /tasks/{id}/events), per gateway process: the cap
    # on concurrent streams (more are answered 503), the keep-alive comment interval, how many events a
    # client may fall behind before it is closed (it resumes with Last-Event-ID), and how long one write
    # may wait on a client that reads nothing before the connection is dropped.
    max_streams: int = Field(default=10_000, ge=1)
    stream_keepalive_seconds: float = Field(default=15.0, gt=0)
    stream_buffer_events: int = Field(default=256, ge=1)
    stream_write_timeout_seconds: float = Field(default=30.0, gt=0)
    # Browser origins allowed to read streams cross-origin (CORS): comma-separated, or "*".
    cors_origins: Annotated[list[str], NoDecode] = []
    # Redis connections the gateway's pool may open (pub/sub uses one more of its own).
    redis_max_connections: int = Field(default=64, ge=1)
    # The webhook address policy (config.settings.push_allow_http, push_allowlist).
    push_allow_http: bool = shared.push_allow_http("A2A_GATEWAY_")
    push_allowlist: Annotated[list[str], NoDecode] = shared.push_allowlist("A2A_GATEWAY_")
    # Notify on every state change, not only input-required, auth-required and terminal states.
    push_every_status: bool = False
    # Delivery retries (a Temporal retry policy): exponential backoff from the initial interval,
    # doubling up to the maximum interval, for at most this many attempts of at most this long each.
    push_attempt_timeout_seconds: float = Field(default=10.0, gt=0)
    push_initial_interval_seconds: float = Field(default=1.0, gt=0)
    push_maximum_interval_seconds: float = Field(default=60.0, gt=0)
    push_max_attempts: int = Field(default=10, ge=1)
    max_push_configs_per_task: int = Field(default=10, ge=1)
    # Requests per second each caller may make (the principal, or the client address with auth off),
    # with bursts of up to `rate_limit_burst`; counted in Redis, so the limit holds across replicas.
    # 0: no limit.
    rate_limit_per_second: float = Field(default=0.0, ge=0)
    rate_limit_burst: int = Field(default=50, ge=1)
    # Concurrent streams per authenticated principal, per gateway process.
    max_streams_per_principal: int = Field(default=100, ge=1)

    _split_lists = field_validator(
        "cors_origins", "push_allowlist", "redis_sentinels", mode="before"
    )(shared.comma_separated)

    def push_policy(self) -> PushPolicy:
        return PushPolicy(
            every_status=self.push_every_status,
            attempt_timeout_seconds=self.push_attempt_timeout_seconds,
            initial_interval_seconds=self.push_initial_interval_seconds,
            maximum_interval_seconds=self.push_maximum_interval_seconds,
            maximum_attempts=self.push_max_attempts,
        )

    def rpc_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}/"

    def agents_config(self) -> AgentsConfig:
        """The agents this gateway routes to: the agents file, or the one agent of the settings."""
        if self.config is not None:
            return read_agents_file(self.config)
        agent = AgentConfig(
            kind="echo",
            task_queue=self.task_queue,
            name=self.agent_name,
            description=self.agent_description,
            version=self.agent_version,
        )
        return AgentsConfig(agents={self.agent: agent})

    def redis_target(self) -> RedisTarget:
        """Where Redis is: one server, a cluster, or the primary of some sentinels."""
        return shared.redis_target_of(self)
