"""The Redis the gateway and the workers share, in one of three shapes:

- one server (or an endpoint that follows failover by itself): `REDIS_URL`;
- a Redis Cluster: `A2A_REDIS_CLUSTER=true`, `REDIS_URL` naming any node as the seed. Every key of a task
  carries the task id as its hash tag (`protocol.keys`), so each Lua step stays in one slot; redis-py's
  cluster client follows `MOVED`/`ASK` and a failover;
- a primary that Sentinel names: `REDIS_SENTINELS=host:port,...` and `A2A_REDIS_SENTINEL_MASTER`;
  `REDIS_URL` then gives only what the primary's connections take (user, password, database, TLS with
  `rediss://`), not where it is.

`RedisTarget.client` is the shared client; `RedisTarget.dedicated_pool` gives the pool of one
long-lived connection (a pub/sub subscription), on the current primary or, in a cluster, a live node
(classic pub/sub reaches every node of a cluster: the workers' cancel channel); `node_pool`, one on a
given node (sharded pub/sub: a task's channel lives on the node that serves the task's slot).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import RedisClusterException, RedisError

# redis-py's URL options that say where the server is: a cluster node's and a Sentinel's primary's
# come from elsewhere.
_LOCATION = ("host", "port", "path")


class RedisConfigError(ValueError):
    """The Redis settings contradict each other or do not parse."""


def parse_sentinels(value: Sequence[str]) -> tuple[tuple[str, int], ...]:
    """`host:port` items (REDIS_SENTINELS, comma-separated) as pairs."""
    pairs = []
    for item in value:
        host, colon, port = item.rpartition(":")
        if not colon or not host or not port.isdigit():
            raise RedisConfigError(f"REDIS_SENTINELS: {item!r} is not host:port")
        pairs.append((host.strip("[]"), int(port)))
    return tuple(pairs)


# What redis-py raises when Redis cannot answer: a cluster's client raises errors of its own besides
# RedisError (a cluster that cannot be reached at all, for one).
REDIS_ERRORS = (RedisError, RedisClusterException)


@dataclass(frozen=True)
class RedisTarget:
    url: str
    cluster: bool = False
    sentinels: tuple[tuple[str, int], ...] = ()
    sentinel_master: str | None = None

    @classmethod
    def of(
        cls, url: str, *, cluster: bool, sentinels: Sequence[str], sentinel_master: str | None
    ) -> RedisTarget:
        """The target a process's settings describe; a contradiction is a `RedisConfigError`."""
        pairs = parse_sentinels(sentinels)
        if pairs and not sentinel_master:
            raise RedisConfigError(
                "REDIS_SENTINELS is set: A2A_REDIS_SENTINEL_MASTER must name the primary"
            )
        if sentinel_master and not pairs:
            raise RedisConfigError(
                "A2A_REDIS_SENTINEL_MASTER is set: REDIS_SENTINELS must list the sentinels"
            )
        if cluster and pairs:
            raise RedisConfigError("A2A_REDIS_CLUSTER and REDIS_SENTINELS exclude each other")
        try:
            parse_url(url)
        except ValueError as err:
            raise RedisConfigError(f"REDIS_URL: {err}") from err
        return cls(url, cluster, pairs, sentinel_master or None)

    def describe(self) -> str:
        """Where the target is, for log lines (no password)."""
        options = parse_url(self.url)
        if self.cluster:
            return f"Redis Cluster (seed {options.get('host')}:{options.get('port', 6379)})"
        if self.sentinels:
            listed = ",".join(f"{host}:{port}" for host, port in self.sentinels)
            return f"Redis primary '{self.sentinel_master}' of the sentinels {listed}"
        where = options.get("path") or f"{options.get('host')}:{options.get('port', 6379)}"
        return f"Redis {where}"

    def client(self, *, max_connections: int, wait_for_connection: float | None = None) -> Redis:
        """The process's shared client: at most `max_connections` connections (per node of a
        cluster); a call finding them all busy waits `wait_for_connection` seconds for one (None: as
        long as it takes). No socket timeout: on Python 3.11 redis-py enforces it with
        `asyncio.wait_for`, which can swallow a cancel; callers set their own deadlines."""
        if self.cluster:
            # The cluster client's pools do not wait: a call past the bound fails (and is retried by
            # its caller as any Redis error is).
            cluster = RedisCluster.from_url(
                self.url, max_connections=max_connections, socket_timeout=None
            )
            # Not a `Redis`, but it serves every command the processes send as one does.
            return cast(Redis, cluster)
        if self.sentinels:
            primary: Redis = self._sentinel.master_for(
                self._master(), max_connections=max_connections, socket_timeout=None
            )
            return primary
        return Redis.from_pool(
            BlockingConnectionPool.from_url(
                self.url,
                max_connections=max_connections,
                timeout=wait_for_connection,
                socket_timeout=None,
            )
        )

    async def dedicated_pool(self, shared: Redis | None, **options: Any) -> ConnectionPool:
        """A pool for one long-lived connection (`options`: the connections' own, e.g. `protocol=2`):
        to the server, to the primary Sentinel names now, or to a live primary of the cluster as
        `shared` (this target's `client`) sees it now."""
        options = {"socket_timeout": None, **options}
        if self.cluster:
            if shared is None:
                raise RedisConfigError(
                    "a cluster's dedicated connection needs the cluster's client"
                )
            host, port = await _cluster_node(cast(RedisCluster, shared))
            return await self.node_pool(host, port, **options)
        if self.sentinels:
            sentinel = self._sentinel
            # The primary's own options (database, user, password, TLS) as `master_for` merges them.
            merged = {**sentinel.connection_kwargs, **options}
            return SentinelConnectionPool(  # type: ignore[no-untyped-call]
                self._master(), sentinel, is_master=True, **merged
            )
        return ConnectionPool.from_url(self.url, **options)

    async def node_pool(self, host: str, port: int, **options: Any) -> ConnectionPool:
        """A pool on one node of the cluster, as the URL says to connect (user, password, TLS)."""
        url_options = {k: v for k, v in parse_url(self.url).items() if k not in _LOCATION}
        return ConnectionPool(
            host=host, port=port, **{**url_options, "socket_timeout": None, **options}
        )

    @functools.cached_property
    def _sentinel(self) -> Sentinel:
        """The sentinels' client, one per target: every reconnect of the hub or the cancel listener
        asks it again, and each new one would open connections to every sentinel."""
        options = parse_url(self.url)
        primary: dict[str, Any] = {
            k: v for k, v in options.items() if k not in (*_LOCATION, "connection_class")
        }
        if options.get("connection_class") is SSLConnection:
            primary["ssl"] = True
        # The sentinels themselves are reached without the primary's credentials or TLS.
        return Sentinel(self.sentinels, sentinel_kwargs={}, **primary)

    def _master(self) -> str:
        assert self.sentinel_master is not None
        return self.sentinel_master


async def _cluster_node(cluster: RedisCluster) -> tuple[str, int]:
    """One of the cluster's primaries at random, from its topology read again now (from any node the
    client knows, so a seed that died does not matter); pub/sub messages reach every node."""
    await cluster.nodes_manager.initialize()
    node = random.choice(cluster.get_primaries())
    return node.host, int(node.port)
