"""The fan-out hub: one Redis pub/sub connection per gateway process (on a Redis Cluster, sharded pub/sub:
one to each node that serves a channel held here), a listener task per connection, and a bounded
buffer per subscriber.

Workers publish `<entry id> <event JSON>` on a task's channel after appending the entry to the task's
stream (workers/publisher.py). The hub subscribes a channel while anyone here listens to it and releases
it after. Pub/sub is at-most-once: when the connection drops, the hub reconnects, subscribes every held
channel again and marks every subscriber for a resync, which then reads what it missed from the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
from redis.asyncio import ConnectionPool
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection

from config.redis_clients import REDIS_ERRORS, RedisTarget
from gateway.streaming.log import LogEntry
from gateway.streaming.subscription import Subscription

logger = logging.getLogger(__name__)

# Where the hub's connection comes from, each time it connects: a pool on the server, the primary
# Sentinel names now, or a live node of the cluster (`RedisTarget.dedicated_pool`), RESP2.
PoolSource = Callable[[], Awaitable[ConnectionPool]]


@dataclass(eq=False)
class _Channel:
    name: str
    subscribers: set[Subscription] = field(default_factory=set)
    # Set when Redis has acknowledged the subscription on the current connection of its link.
    confirmed: asyncio.Event = field(default_factory=asyncio.Event)
    link: _Link | None = None

    def resync(self) -> None:
        for subscription in self.subscribers:
            subscription.mark_resync()


@dataclass(frozen=True)
class _Commands:
    """Classic pub/sub (one server, or any node of a cluster, which passes every message to every
    node) or sharded pub/sub (a cluster's node serves the channels of its own slots)."""

    subscribe: str
    unsubscribe: str
    message: bytes
    subscribed: bytes
    unsubscribed: bytes


CLASSIC = _Commands("SUBSCRIBE", "UNSUBSCRIBE", b"message", b"subscribe", b"unsubscribe")
SHARDED = _Commands("SSUBSCRIBE", "SUNSUBSCRIBE", b"smessage", b"ssubscribe", b"sunsubscribe")


class _Link:
    """One pub/sub connection and the channels it carries. After a failure it connects again and
    subscribes them again (their subscribers resync from the log), unless the hub moved them all to
    other links (a cluster's node that went away)."""

    def __init__(self, hub: Hub, name: str, pools: PoolSource, commands: _Commands) -> None:
        self._hub = hub
        self.name = name
        self._pools = pools
        self._commands = commands
        self.channels: dict[str, _Channel] = {}
        # Channels whose subscription has been sent on the current connection, in order: Redis
        # acknowledges them in that order, so each acknowledgement belongs to the oldest one.
        self._in_flight: deque[_Channel] = deque()
        self._outbox: list[tuple[str, str]] = []
        self._outbox_ready = asyncio.Event()
        self._conn: AbstractConnection | None = None
        self.connected = asyncio.Event()
        self.stopped = False
        self.task = asyncio.create_task(self._listen(), name=f"hub-{name}")

    def add(self, channel: _Channel) -> None:
        self.channels[channel.name] = channel
        channel.link = self
        channel.confirmed.clear()
        self._enqueue(self._commands.subscribe, channel)

    def remove(self, channel: _Channel, *, unsubscribe: bool = True) -> None:
        if self.channels.get(channel.name) is channel:
            del self.channels[channel.name]
            if unsubscribe:
                self._enqueue(self._commands.unsubscribe, channel)

    def _enqueue(self, command: str, channel: _Channel) -> None:
        """Queue a command for the writer. Never awaits, so a subscriber's cancel cannot land mid-write
        (redis-py can swallow a cancel that does)."""
        if self._conn is None:
            return  # the next connection subscribes every channel held then
        if command == self._commands.subscribe:
            self._in_flight.append(channel)
        self._outbox.append((command, channel.name))
        self._outbox_ready.set()

    async def _listen(self) -> None:
        delay = self._hub.reconnect_delay
        while not self.stopped:
            error: Exception | None = None
            try:
                await self._serve_connection()
            except* (*REDIS_ERRORS, OSError, TimeoutError) as group:
                error = group.exceptions[0]
            # A connection that came up is retried after the base delay; while Redis stays down, less
            # and less often.
            delay = self._hub.reconnect_delay if self.connected.is_set() else min(delay * 2, 5.0)
            self._conn = None
            self.connected.clear()
            self._in_flight.clear()
            self._outbox.clear()
            for channel in self.channels.values():
                channel.confirmed.clear()
            await self._hub.link_lost(self)
            if self.stopped:
                logger.info("Redis pub/sub: %s gone (%s); its channels moved", self.name, error)
                return
            logger.warning(
                "Redis pub/sub connection %s lost (%s); reconnecting in %.1f s",
                self.name,
                error,
                delay,
            )
            await asyncio.sleep(delay)

    async def _serve_connection(self) -> None:
        pool = await self._pools()
        conn: AbstractConnection = pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.connect()  # type: ignore[no-untyped-call]
            held = list(self.channels.values())
            self._conn = conn
            for channel in held:
                self._enqueue(self._commands.subscribe, channel)
                channel.resync()
            if held:
                logger.info("Redis pub/sub: subscribing %d channels again", len(held))
            self.connected.set()
            async with asyncio.TaskGroup() as group:
                group.create_task(self._write(conn))
                await self._read(conn)
        finally:
            await conn.disconnect()

    async def _write(self, conn: AbstractConnection) -> None:
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            batch, self._outbox = self._outbox, []
            # Runs of one command go as one (SUBSCRIBE a b c); Redis answers per channel, in order.
            for command, items in itertools.groupby(batch, key=lambda item: item[0]):
                names = [] if command == "PING" else [name for _, name in items]
                await conn.send_command(command, *names, check_health=False)

    async def _read(self, conn: AbstractConnection) -> None:
        idle_reads = 0
        commands = self._commands
        while True:
            reply: Any = await conn.read_response(timeout=self._hub.ping_interval)
            if reply is None:
                # Quiet for a while: make sure the connection is alive (a dead one never answers).
                idle_reads += 1
                if idle_reads > 2:
                    raise TimeoutError("no answer to PING")
                self._outbox.append(("PING", ""))
                self._outbox_ready.set()
                continue
            idle_reads = 0
            if not isinstance(reply, list):
                continue  # PONG outside pub/sub mode
            kind = reply[0]
            if kind == commands.message:
                self._hub.dispatch(reply[1].decode(), reply[2])
            elif kind == commands.subscribed:
                self._acknowledge(reply[1].decode())
            elif kind == commands.unsubscribed and commands is SHARDED:
                name = reply[1].decode()
                if name in self.channels:
                    # Not asked for: the channel's slot has moved to another node.
                    self._hub.moved(self, self.channels[name])

    def _acknowledge(self, name: str) -> None:
        if self._in_flight and self._in_flight[0].name == name:
            self._in_flight.popleft().confirmed.set()
        else:  # pragma: no cover - Redis acknowledges in order
            logger.error("Unexpected subscription acknowledgement for %s", name)


class Hub:
    def __init__(
        self,
        redis: str | PoolSource,
        *,
        buffer_events: int,
        ping_interval: float = 10.0,
        reconnect_delay: float = 0.5,
        cluster: RedisCluster | None = None,
        node_pools: Callable[[str, int], Awaitable[ConnectionPool]] | None = None,
    ) -> None:
        """`redis`: where the one connection goes (a URL, or a `PoolSource`). With `cluster` (the
        cluster's client, for its slot map) and `node_pools` (a pool on a node, RESP2), sharded pub/sub
        instead: a connection to each node that serves a channel held here."""
        # RESP2: published messages arrive as plain replies of the connection (RESP3 turns them into
        # push messages for a callback). No socket timeout: redis-py enforces it with
        # `asyncio.wait_for`, which on Python 3.11 can swallow a cancel; reads carry their own.
        self._pools: PoolSource = (
            partial(RedisTarget(redis).dedicated_pool, None, protocol=2)
            if isinstance(redis, str)
            else redis
        )
        self._cluster = cluster
        self._node_pools = node_pools
        self._buffer_events = buffer_events
        self.ping_interval = ping_interval
        self.reconnect_delay = reconnect_delay
        self._channels: dict[str, _Channel] = {}
        self._links: dict[str, _Link] = {}
        self._moving: set[asyncio.Task[None]] = set()

    @property
    def channel_count(self) -> int:
        return len(self._channels)

    async def start(self, connect_wait: float) -> None:
        """Start listening; waits up to `connect_wait` seconds for the first connection (sharded: for
        the cluster's slot map), but runs on regardless (the gateway must start while Redis is down;
        /readyz reports it)."""
        with contextlib.suppress(TimeoutError, *REDIS_ERRORS, OSError):
            async with asyncio.timeout(connect_wait):
                if self._cluster is not None:
                    await self._cluster.initialize()
                else:
                    await self._link("", self._pools).connected.wait()

    def close_subscriptions(self) -> None:
        """End every subscription: their streams finish their responses (clients resume elsewhere)."""
        for channel in self._channels.values():
            for subscription in channel.subscribers:
                subscription.close()

    async def close(self) -> None:
        self.close_subscriptions()
        tasks = [link.task for link in self._links.values()] + list(self._moving)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @contextlib.asynccontextmanager
    async def subscribe(
        self, name: str, *, confirm_within: float | None = None
    ) -> AsyncIterator[Subscription]:
        """A subscription to channel `name`, live once this yields: every message Redis publishes on it
        from then on reaches the subscription (or raises its `resync` flag). Raises TimeoutError if
        Redis has not confirmed it within `confirm_within` seconds (Redis down)."""
        subscription = Subscription(self._buffer_events)
        channel = self._channels.get(name)
        if channel is None:
            link = self._link_for(name)
            if link is None:
                raise TimeoutError(f"no Redis node is known to serve channel {name}")
            channel = self._channels[name] = _Channel(name)
            link.add(channel)
        channel.subscribers.add(subscription)
        try:
            async with asyncio.timeout(confirm_within):
                await channel.confirmed.wait()
            yield subscription
        finally:
            channel.subscribers.discard(subscription)
            if not channel.subscribers and self._channels.get(name) is channel:
                del self._channels[name]
                if channel.link is not None:
                    channel.link.remove(channel)

    def dispatch(self, name: str, payload: bytes) -> None:
        channel = self._channels.get(name)
        if channel is None:
            return
        entry_id, _, event = payload.partition(b" ")
        if not event:
            channel.resync()
            return
        entry = LogEntry(entry_id.decode(), orjson.loads(event))
        for subscription in channel.subscribers:
            subscription.push(entry)

    def _link(self, name: str, pools: PoolSource) -> _Link:
        link = self._links.get(name)
        if link is None:
            commands = CLASSIC if self._cluster is None else SHARDED
            link = self._links[name] = _Link(self, name, pools, commands)
        return link

    def _link_for(self, channel: str) -> _Link | None:
        """The link that carries `channel`: the one connection, or the connection to the node that
        serves the channel's slot now, as the cluster client last saw the slots (None: it has not
        seen them, the cluster being unreachable since the gateway started)."""
        if self._cluster is None or self._node_pools is None:
            return self._link("", self._pools)
        try:
            node = self._cluster.nodes_manager.get_node_from_slot(self._cluster.keyslot(channel))
        except (*REDIS_ERRORS, LookupError) as err:
            logger.warning("Redis pub/sub: no node known for %s (%s)", channel, err)
            return None
        return self._link(node.name, partial(self._node_pools, node.host, int(node.port)))

    async def link_lost(self, link: _Link) -> None:
        """`link`'s connection failed. Sharded: the cluster's slot map is read again, and the channels
        whose slots another node serves now move to that node's link; a link left with none stops."""
        if self._cluster is None:
            return
        await self._read_slots()
        for channel in list(link.channels.values()):
            self._relocate(link, channel)
        if not link.channels:
            link.stopped = True
            if self._links.get(link.name) is link:
                del self._links[link.name]

    def moved(self, link: _Link, channel: _Channel) -> None:
        """Redis ended `channel`'s sharded subscription on `link` (its slot moved): subscribe it where
        the slot is now, once the slot map has been read again."""

        async def move() -> None:
            await self._read_slots()
            if channel.link is link:
                self._relocate(link, channel, force=True)

        task = asyncio.create_task(move())
        self._moving.add(task)
        task.add_done_callback(self._moving.discard)

    async def _read_slots(self) -> None:
        """Read the cluster's slot map again (as it was when no node answers)."""
        assert self._cluster is not None
        with contextlib.suppress(*REDIS_ERRORS, OSError):
            await self._cluster.nodes_manager.initialize()

    def _relocate(self, link: _Link, channel: _Channel, *, force: bool = False) -> None:
        target = self._link_for(channel.name)
        if target is None or (target is link and not force):
            return  # stays where it is: subscribed again when `link` reconnects
        link.remove(channel, unsubscribe=False)
        channel.resync()
        target.add(channel)
