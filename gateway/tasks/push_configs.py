"""The registry of push notification configs: each checked against the webhook address policy and kept
in Redis with the task's retention. The task's workflow hears of them through `TemporalTasks` and
delivers the notifications."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import Any

from redis.asyncio import Redis

from config.webhook_policy import (
    AUTH_SCHEMES,
    Resolver,
    WebhookPolicy,
    WebhookRefused,
    host_addresses,
    system_resolver,
)
from protocol import (
    PROTOCOL_VERSION,
    InvalidParamsError,
    PushNotificationConfig,
    StoredPushConfig,
    task_push_key,
)

_CONFIG_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class PushConfigs:
    def __init__(
        self,
        redis: Redis,
        policy: WebhookPolicy,
        *,
        ttl_seconds: int,
        timeout: float,
        max_configs: int,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._redis = redis
        self._policy = policy
        self._ttl = ttl_seconds
        self._timeout = timeout
        self._max_configs = max_configs
        self._resolver = resolver

    async def check(self, config: PushNotificationConfig, field: str) -> None:
        """Raise -32602 naming the rule when the config cannot be delivered to. The URL is never
        fetched; a host that does not resolve yet is accepted (delivery checks it again)."""
        if config.id is not None and not _CONFIG_ID.match(config.id):
            raise InvalidParamsError(
                f"{field}.id must be 1 to 128 letters, digits, '-', '_' or '.', got {config.id!r}"
            )
        auth = config.authentication
        secrets = {
            "token": config.token,
            "authentication.credentials": auth.credentials if auth is not None else None,
        }
        for name, value in secrets.items():
            if value is not None and not (value.isascii() and value.isprintable()):
                raise InvalidParamsError(
                    f"{field}.{name} must be printable ASCII: it travels in an HTTP header"
                )
        if auth is not None and auth.credentials is not None:
            schemes = {scheme.lower() for scheme in auth.schemes}
            if not schemes & {scheme.lower() for scheme in AUTH_SCHEMES}:
                raise InvalidParamsError(
                    f"{field}.authentication.schemes {auth.schemes} names no scheme this gateway "
                    f"can send; supported: {', '.join(AUTH_SCHEMES)}"
                )
        try:
            host, port = self._policy.check_url(config.url)
            if self._policy.host_allowed(host):
                return
            for address in await self._addresses(host, port):
                self._policy.check_address(address, host)
        except WebhookRefused as err:
            raise InvalidParamsError(f"Invalid parameters: {err}") from err

    async def _addresses(self, host: str, port: int) -> list[str]:
        try:
            async with asyncio.timeout(self._timeout):
                return await host_addresses(host, port, self._resolver)
        except (OSError, TimeoutError):
            return []

    async def save(
        self, task_id: str, config: PushNotificationConfig, version: str = PROTOCOL_VERSION
    ) -> StoredPushConfig:
        """Store `config` (assigning its id when it has none); a config with a known id is replaced.
        `version`: the A2A version its notifications are written in."""
        config_id = config.id or str(uuid.uuid4())
        key = task_push_key(task_id)
        async with asyncio.timeout(self._timeout):
            existing: Any = await self._redis.hget(key, config_id)
            if existing is None and await self._redis.hlen(key) >= self._max_configs:
                raise InvalidParamsError(
                    f"Task '{task_id}' already has {self._max_configs} push notification configs, "
                    "the most it may have; delete one first"
                )
            created = (
                StoredPushConfig.model_validate_json(existing).created_ns
                if existing is not None
                else time.time_ns()
            )
            stored = StoredPushConfig(
                created_ns=created,
                config=config.model_copy(update={"id": config_id}),
                version=version,
            )
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, config_id, stored.model_dump_json(exclude_none=True))
                pipe.expire(key, self._ttl)
                await pipe.execute()
        return stored

    async def configs(self, task_id: str) -> list[StoredPushConfig]:
        """The task's configs, oldest first."""
        async with asyncio.timeout(self._timeout):
            raw: dict[Any, Any] = await self._redis.hgetall(task_push_key(task_id))
        stored = [StoredPushConfig.model_validate_json(value) for value in raw.values()]
        return sorted(stored, key=lambda item: item.created_ns)

    async def get(self, task_id: str, config_id: str) -> StoredPushConfig | None:
        async with asyncio.timeout(self._timeout):
            raw: Any = await self._redis.hget(task_push_key(task_id), config_id)
        return None if raw is None else StoredPushConfig.model_validate_json(raw)

    async def delete(self, task_id: str, config_id: str) -> None:
        async with asyncio.timeout(self._timeout):
            await self._redis.hdel(task_push_key(task_id), config_id)
