"""Push notification configs: checked against the webhook address policy, stored in Redis with the
task's retention, and announced to the task's workflow, which delivers the notifications."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from protocol import (
    AUTH_SCHEMES,
    InvalidParamsError,
    PushNotificationConfig,
    StoredPushConfig,
    Task,
    WebhookPolicy,
    WebhookRefused,
    task_push_key,
)
from workflows import (
    PushDeliveryInput,
    PushPolicy,
    PushWorkflow,
    PushWorkflowInput,
    TaskWorkflow,
    push_workflow_id,
    workflow_id_for,
)

_CONFIG_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

# Host name, port -> IP addresses.
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class PushRegistry:
    def __init__(
        self,
        redis: Redis,
        temporal: Client,
        policy: WebhookPolicy,
        push: PushPolicy,
        *,
        ttl_seconds: int,
        timeout: float,
        max_configs: int,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._redis = redis
        self._temporal = temporal
        self._policy = policy
        self._push = push
        self._ttl = ttl_seconds
        self._timeout = timeout
        self._max_configs = max_configs
        self._resolver = resolver

    @property
    def policy(self) -> PushPolicy:
        return self._push

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
            ipaddress.ip_address(host)
            return [host]
        except ValueError:
            pass
        try:
            async with asyncio.timeout(self._timeout):
                return await self._resolver(host, port)
        except (OSError, TimeoutError):
            return []

    async def save(self, task_id: str, config: PushNotificationConfig) -> StoredPushConfig:
        """Store `config` (assigning its id when it has none); a config with a known id is replaced."""
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
                created_ns=created, config=config.model_copy(update={"id": config_id})
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
        handle = self._temporal.get_workflow_handle(workflow_id_for(task_id))
        try:
            async with asyncio.timeout(self._timeout):
                await handle.signal(TaskWorkflow.push_removed, config_id)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise

    async def announce(
        self, task_id: str, config_id: str, task_queue: str, task: Callable[[], Awaitable[Task]]
    ) -> None:
        """Tell the task's workflow about a config it must notify. A workflow that has closed (its task
        is terminal) cannot hear it: a `PushWorkflow` delivers the terminal notification instead."""
        handle = self._temporal.get_workflow_handle(workflow_id_for(task_id))
        try:
            async with asyncio.timeout(self._timeout):
                await handle.signal(TaskWorkflow.push_configured, config_id)
            return
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        current = await task()
        delivery = PushDeliveryInput(
            task_id=task_id,
            context_id=current.contextId,
            status=current.status,
            config_id=config_id,
        )
        async with asyncio.timeout(self._timeout):
            await self._temporal.start_workflow(
                PushWorkflow.run,
                PushWorkflowInput(delivery=delivery, policy=self._push),
                id=push_workflow_id(task_id, config_id),
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
