"""Worker process settings, from `A2A_WORKER_*` plus Temporal's and Redis's own variables."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from workers.agents import EchoOptions


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="A2A_WORKER_", extra="ignore", populate_by_name=True
    )

    agent: str = "echo"
    # Defaults to the agent's own queue (`a2a-agent-<agent>`).
    task_queue: str | None = None
    temporal_address: str = Field(
        default="127.0.0.1:7233",
        validation_alias=AliasChoices("TEMPORAL_ADDRESS", "A2A_WORKER_TEMPORAL_ADDRESS"),
    )
    temporal_namespace: str = Field(
        default="default",
        validation_alias=AliasChoices("TEMPORAL_NAMESPACE", "A2A_WORKER_TEMPORAL_NAMESPACE"),
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6390/0",
        validation_alias=AliasChoices("REDIS_URL", "A2A_WORKER_REDIS_URL"),
    )
    # Event log retention: the per-task stream is capped at about this many entries, and it and the
    # snapshot expire this long after the task's last event.
    stream_max_length: int = Field(default=10_000, ge=1)
    retention_seconds: int = Field(default=7 * 24 * 3600, ge=1)
    max_concurrent_activities: int = Field(default=1000, ge=1)
    # How soon a cancel reaches a running agent: heartbeats are sent at most this far apart.
    heartbeat_seconds: float = Field(default=1.0, gt=0)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    echo_chunks: int = Field(default=1, ge=1)
    echo_delay: float = Field(default=0.0, ge=0)
    echo_final_state: str = "completed"

    def echo_options(self) -> EchoOptions:
        return EchoOptions.model_validate(
            {
                "chunks": self.echo_chunks,
                "delay": self.echo_delay,
                "finalState": self.echo_final_state,
            }
        )
