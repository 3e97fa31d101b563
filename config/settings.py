"""Settings both processes read: each under its own prefix (`A2A_GATEWAY_…`, `A2A_WORKER_…`) and under the
name they share (Temporal's `TEMPORAL_ADDRESS`, `REDIS_URL`, `A2A_CONFIG`, `A2A_PUSH_*`...). Each
function is one field of a process's settings class, named for that process."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import AliasChoices, Field

from config import temporal
from config.redis_clients import RedisTarget


def _shared(name: str, prefix: str, setting: str, default: Any) -> Any:
    return Field(default=default, validation_alias=AliasChoices(name, f"{prefix}{setting}"))


def temporal_address(prefix: str) -> Any:
    """Temporal's address; without one, the environment configuration's profile's (`config.temporal`)."""
    return Field(
        default_factory=lambda: temporal.profile_value("address") or temporal.DEFAULT_ADDRESS,
        validation_alias=AliasChoices("TEMPORAL_ADDRESS", f"{prefix}TEMPORAL_ADDRESS"),
    )


def temporal_namespace(prefix: str) -> Any:
    return Field(
        default_factory=lambda: temporal.profile_value("namespace") or temporal.DEFAULT_NAMESPACE,
        validation_alias=AliasChoices("TEMPORAL_NAMESPACE", f"{prefix}TEMPORAL_NAMESPACE"),
    )


def redis_url(prefix: str) -> Any:
    return _shared("REDIS_URL", prefix, "REDIS_URL", "redis://127.0.0.1:6390/0")


def redis_cluster(prefix: str) -> Any:
    """REDIS_URL is a seed node of a Redis Cluster (`config.redis_clients`)."""
    return _shared("A2A_REDIS_CLUSTER", prefix, "REDIS_CLUSTER", False)


def redis_sentinels(prefix: str) -> Any:
    """Sentinels (`host:port`, comma-separated) that name the Redis primary."""
    return _shared("REDIS_SENTINELS", prefix, "REDIS_SENTINELS", [])


def redis_sentinel_master(prefix: str) -> Any:
    """The name under which the sentinels know the primary."""
    return _shared("A2A_REDIS_SENTINEL_MASTER", prefix, "REDIS_SENTINEL_MASTER", None)


class RedisFields(Protocol):
    redis_url: str
    redis_cluster: bool
    redis_sentinels: list[str]
    redis_sentinel_master: str | None


def redis_target_of(settings: RedisFields) -> RedisTarget:
    """Where a process's settings say Redis is: one server, a cluster, or the primary of some
    sentinels (`config.redis_clients`)."""
    return RedisTarget.of(
        settings.redis_url,
        cluster=settings.redis_cluster,
        sentinels=settings.redis_sentinels,
        sentinel_master=settings.redis_sentinel_master,
    )


def agents_file(prefix: str) -> Any:
    """The agents file (TOML, `config.agents`)."""
    return _shared("A2A_CONFIG", prefix, "CONFIG", None)


def log_format(prefix: str) -> Any:
    """Log lines as text or as JSON objects (with trace and task ids)."""
    return _shared("A2A_LOG_FORMAT", prefix, "LOG_FORMAT", "text")


def push_allow_http(prefix: str) -> Any:
    """Plain http webhooks allowed (local development only): part of the webhook address policy, which
    the gateway checks at `set` and the worker again at every delivery."""
    return _shared("A2A_PUSH_ALLOW_HTTP", prefix, "PUSH_ALLOW_HTTP", False)


def push_allowlist(prefix: str) -> Any:
    """The addresses (CIDRs) and host names a webhook may reach despite being loopback, private,
    link-local...: comma-separated (`comma_separated`)."""
    return _shared("A2A_PUSH_ALLOWLIST", prefix, "PUSH_ALLOWLIST", [])


def comma_separated(value: object) -> object:
    """A list setting given as one string: its comma-separated items, blanks dropped."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value
