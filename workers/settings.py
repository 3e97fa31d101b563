"""Worker process settings, from `A2A_WORKER_*` plus Temporal's and Redis's own variables."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

import config.settings as shared
from config.agents import AgentConfig, AgentsConfigError, read_agents_file
from config.redis_clients import RedisTarget
from config.telemetry import LogFormat


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="A2A_WORKER_", extra="ignore", populate_by_name=True
    )

    # The agents file (TOML, config/agents.py): `agent` names one of its agents. Without one, `agent`
    # is an echo agent configured by the A2A_WORKER_ECHO_* settings.
    config: Path | None = shared.agents_file("A2A_WORKER_")
    agent: str = "echo"
    # Defaults to the agents file's `task_queue`, then to the agent's own queue (`a2a-agent-<agent>`).
    task_queue: str | None = None
    temporal_address: str = shared.temporal_address("A2A_WORKER_")
    temporal_namespace: str = shared.temporal_namespace("A2A_WORKER_")
    redis_url: str = shared.redis_url("A2A_WORKER_")
    redis_cluster: bool = shared.redis_cluster("A2A_WORKER_")
    redis_sentinels: Annotated[list[str], NoDecode] = shared.redis_sentinels("A2A_WORKER_")
    redis_sentinel_master: str | None = shared.redis_sentinel_master("A2A_WORKER_")
    # Event log retention: the per-task stream is capped at about this many entries, and it and the
    # snapshot expire this long after the task's last event.
    stream_max_length: int = Field(default=10_000, ge=1)
    retention_seconds: int = Field(default=7 * 24 * 3600, ge=1)
    max_concurrent_activities: int = Field(default=1000, ge=1)
    # Workflows kept in memory between their workflow tasks. Every running turn has an open workflow:
    # with fewer slots than open workflows, each new workflow task evicts one, which must replay its
    # history in a fresh sandbox when it next runs.
    max_cached_workflows: int = Field(default=2000, ge=2)
    # Concurrent long polls for workflow tasks, four in five on the task queue: a quick turn's
    # workflow ends in its first workflow task, which comes from there, not from the sticky queue
    # (docs/benchmarks.md has the figures).
    workflow_task_polls: int = Field(default=10, ge=2)
    # Redis connections the worker's pool may open; a turn that finds them all busy waits for one.
    redis_max_connections: int = Field(default=64, ge=1)
    # How many messages of a context's earlier tasks an agent sees with a new task of the context.
    context_messages: int = Field(default=20, ge=0)
    # How often a running turn tells Temporal its worker lives (cancels reach turns over Redis;
    # Temporal's own, the backstop, arrive with a heartbeat). A third of the gateway's
    # A2A_GATEWAY_AGENT_HEARTBEAT_TIMEOUT_SECONDS, after which a silent worker's turn is retried.
    heartbeat_seconds: float = Field(default=30.0, gt=0)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # The key of Claude agents (never logged).
    anthropic_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ANTHROPIC_API_KEY")
    )
    # The webhook address policy (config.settings.push_allow_http, push_allowlist).
    push_allow_http: bool = shared.push_allow_http("A2A_WORKER_")
    push_allowlist: Annotated[list[str], NoDecode] = shared.push_allowlist("A2A_WORKER_")
    # One delivery attempt: DNS, connect, request and response.
    push_timeout_seconds: float = Field(default=10.0, gt=0)
    # Prometheus metrics (Temporal's SDK metrics and the worker's own) at http://HOST:PORT/metrics;
    # port 0 turns the endpoint off. 9464 is the OpenTelemetry Prometheus exporter's default port.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    log_format: LogFormat = shared.log_format("A2A_WORKER_")
    echo_chunks: int = Field(default=1, ge=1)
    echo_delay: float = Field(default=0.0, ge=0)
    echo_final_state: str = "completed"

    _split_lists = field_validator("push_allowlist", "redis_sentinels", mode="before")(
        shared.comma_separated
    )

    @field_validator("metrics_host")
    @classmethod
    def _check_metrics_host(cls, value: str) -> str:
        # Temporal's exporter binds a socket address, so it takes no host name (not even localhost).
        try:
            ipaddress.ip_address(value)
        except ValueError as err:
            raise ValueError(
                f"A2A_WORKER_METRICS_HOST must be an IP address such as 127.0.0.1 or 0.0.0.0, "
                f"not '{value}'"
            ) from err
        return value

    def api_key(self) -> str | None:
        return self.anthropic_api_key.get_secret_value() if self.anthropic_api_key else None

    def agent_config(self) -> AgentConfig:
        """This worker's agent, from the agents file or from these settings."""
        if self.config is None:
            options = {
                "chunks": self.echo_chunks,
                "delay": self.echo_delay,
                "finalState": self.echo_final_state,
            }
            return AgentConfig(kind="echo", task_queue=self.task_queue, options=options)
        agents = read_agents_file(self.config).agents
        if self.agent not in agents:
            raise AgentsConfigError(
                f"{self.config} has no agent named '{self.agent}' (--agent / A2A_WORKER_AGENT); "
                f"its agents: {', '.join(agents)}"
            )
        agent = agents[self.agent]
        if self.task_queue is not None:
            agent = agent.model_copy(update={"task_queue": self.task_queue})
        return agent

    def redis_target(self) -> RedisTarget:
        """Where Redis is: one server, a cluster, or the primary of some sentinels."""
        return shared.redis_target_of(self)
