"""GETs over one pipelined Redis connection: the reads `tasks/get` makes of open tasks' snapshots
(`TaskStore` remembers terminal ones), whether tracing is on or off.

Each GET is written at once on the one connection and the replies are matched to the callers in
order. Measured with bench.compare's pieces (`tasks/get` of an open task, tracing off, wrk at C=1, 8
and 32, two runs): about 0.29 ms of the gateway's CPU per request this way against 0.38 ms through redis-py's
pool, a quarter less.

The URL is redis-py's to read (`parse_url`, then its connection class for the defaults and the TLS
context), so `redis://`, `rediss://` and `unix://` URLs reach the Redis the gateway's pool reaches, as
the same user and database. Of the URL's other options none is used: the caller's deadline
(`asyncio.timeout`) bounds connecting and reading, and GET is the same in every protocol version.

A lost connection fails the calls waiting on it (the caller falls back, as for any Redis error) and
the next call connects again. A caller that gives up (its timeout) leaves its reply to be read and
dropped, so the replies after it still reach their callers.

The connection also keeps what it read (`cached`), with Redis's server-assisted client-side caching:
it speaks RESP3 and turns `CLIENT TRACKING` on, so Redis remembers which keys it read and pushes an
`invalidate` message on this same connection when any client (a worker, another gateway) changes or
expires one of them, or flushes the database. On one connection replies and pushes arrive in the
order Redis made them, so a reply to a request sent at time T comes after every invalidation of a
write made before T: the values are then known current as of T. A value is served only while the
last such T is under `FRESH_SECONDS` old; when reads are all answered from memory a PING renews it,
and when Redis stops answering (a partition that leaves the socket open) the reads go back to Redis
within that time. A lost connection takes its values with it. Redis before 6, or a user whose ACL
refuses HELLO or CLIENT, leaves the reads uncached.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, cast

import hiredis
from opentelemetry import trace
from opentelemetry.util.types import AttributeValue
from redis.asyncio.connection import (
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
    parse_url,
)

tracer = trace.get_tracer(__name__)
logger = logging.getLogger(__name__)

# The values one connection keeps (the oldest read is dropped first), and the largest kept.
CACHE_ENTRIES = 10_000
CACHE_VALUE_BYTES = 64 * 1024
# How long after the request of Redis's last reply its values are still served from memory.
FRESH_SECONDS = 1.0


class PipelineError(ConnectionError):
    """The connection failed or Redis answered with an error."""


class _ErrorReply(Exception):
    """What the reader makes of an error reply. Our own class: in a test process that had run a good
    part of the suite, the reader's replies were of a `ReplyError` class other than the one
    `hiredis.ReplyError` named (hiredis keeps its default class in module state)."""


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self._reader = hiredis.Reader(replyError=_ErrorReply)
        # Per request, in order: its caller (None: a PING of `_renew`), the key a GET read, and
        # when it was sent.
        self._waiting: deque[tuple[asyncio.Future[Any] | None, str | None, float]] = deque()
        self._transport: asyncio.Transport | None = None
        self.lost = False
        # Key -> value read, once Redis tracks this connection's reads (`track`).
        self._values: dict[str, bytes] | None = None
        self._fresh_until = 0.0
        self._renewing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they have the same methods.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        values = self._values
        while (reply := self._reader.gets()) is not False:
            if isinstance(reply, hiredis.PushNotification):
                if values is not None:
                    self._invalidate(values, reply)
                continue
            waiter, key, sent = self._waiting.popleft()
            if values is not None:
                self._fresh_until = sent + FRESH_SECONDS
                if key is not None and type(reply) is bytes and len(reply) <= CACHE_VALUE_BYTES:
                    values.pop(key, None)
                    values[key] = reply
                    if len(values) > CACHE_ENTRIES:
                        del values[next(iter(values))]
            if waiter is None:
                self._renewing = False
            elif waiter.done():
                continue
            elif isinstance(reply, _ErrorReply):
                waiter.set_exception(PipelineError(f"Redis answered: {reply}"))
            else:
                waiter.set_result(reply)

    def _invalidate(self, values: dict[str, bytes], push: list[Any]) -> None:
        if len(push) < 2 or push[0] != b"invalidate":
            return
        if push[1] is None:  # FLUSHALL, FLUSHDB
            values.clear()
            return
        for key in push[1]:
            values.pop(key.decode(), None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._values = None
        while self._waiting:
            waiter = self._waiting.popleft()[0]
            if waiter is not None and not waiter.done():
                waiter.set_exception(PipelineError(f"connection to Redis lost: {exc or 'closed'}"))

    def call(self, *args: bytes | str | int, key: str | None = None) -> asyncio.Future[Any]:
        """Send a command; `key`: the key a GET reads, kept with its value when tracking."""
        if self.lost or self._transport is None:
            raise PipelineError("connection to Redis lost")
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append((waiter, key, time.monotonic()))
        # hiredis's stub types the argument as a 1-tuple; it takes any number.
        self._transport.write(hiredis.pack_command(cast(Any, args)))
        return waiter

    async def track(self) -> None:
        """RESP3 and CLIENT TRACKING: from now on the values read are kept until Redis says they
        changed. Raises PipelineError when Redis refuses either."""
        await self.call(b"HELLO", b"3")
        await self.call(b"CLIENT", b"TRACKING", b"ON")
        self._values = {}

    def cached(self, key: str) -> bytes | None:
        values = self._values
        if values is None:
            return None
        now = time.monotonic()
        if now >= self._fresh_until:
            return None
        value = values.get(key)
        if (
            value is not None
            and not self._renewing
            and now >= self._fresh_until - FRESH_SECONDS / 2
        ):
            self._renew(now)
        return value

    def _renew(self, now: float) -> None:
        """A PING: its reply makes the values current as of now."""
        assert self._transport is not None  # values are kept only on a connection made
        self._renewing = True
        self._waiting.append((None, None, now))
        self._transport.write(b"*1\r\n$4\r\nPING\r\n")

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class PipelinedReader:
    """GET over one connection, opened on first use and again after it is lost."""

    def __init__(self, url: str, *, traced: bool = False, cache: bool = True) -> None:
        """`traced`: each GET is a client span, named and described as redis-py's instrumentation
        describes one, so that a traced gateway still shows its reads. `cache`: keep the values read
        while Redis tracks them (`cached`)."""
        options: dict[str, Any] = dict(parse_url(url))
        # redis-py's connection for the URL, never opened: where, as whom, which database, TLS.
        self._server: Connection | UnixDomainSocketConnection = options.pop(
            "connection_class", Connection
        )(**options)
        self._span_attributes = _span_attributes(self._server) if traced else None
        self._connection: _Connection | None = None
        self._connecting: asyncio.Lock | None = None
        self._cache = cache

    @property
    def caching(self) -> bool:
        """Whether values read are kept (`cached`): asked for, and Redis has not refused."""
        return self._cache

    def cached(self, key: str) -> bytes | None:
        """The value a GET of `key` read, if Redis has not said since that it changed (None: ask
        Redis with `get`)."""
        connection = self._connection
        return None if connection is None else connection.cached(key)

    async def get(self, key: str) -> bytes | None:
        if self._span_attributes is None:
            return await self._get(key)
        with tracer.start_as_current_span(
            "GET", kind=trace.SpanKind.CLIENT, attributes=self._span_attributes
        ):
            return await self._get(key)

    async def _get(self, key: str) -> bytes | None:
        connection = self._connection
        if connection is None or connection.lost:
            connection = await self._connect()
        reply: bytes | None = await connection.call(b"GET", key, key=key)
        return reply

    async def _connect(self) -> _Connection:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._connection is not None and not self._connection.lost:
                return self._connection
            connection = await self._open()
            try:
                await self._log_in(connection)
            except BaseException:
                # Refused, or the caller's deadline passed mid-handshake.
                connection.close()
                raise
            self._connection = connection
            return connection

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        server = self._server
        try:
            if isinstance(server, UnixDomainSocketConnection):
                _, connection = await loop.create_unix_connection(_Connection, server.path)
            else:
                tls = server.ssl_context.get() if isinstance(server, SSLConnection) else None
                _, connection = await loop.create_connection(
                    _Connection, server.host, int(server.port), ssl=tls
                )
        except OSError as err:  # ssl.SSLError included
            raise PipelineError(f"cannot connect to Redis: {err}") from err
        return connection

    async def _log_in(self, connection: _Connection) -> None:
        server = self._server
        if server.password is not None:
            # The password alone when the URL names no user, as redis-py sends it (and Redis
            # before 6 takes only that form).
            user = [] if server.username is None else [server.username]
            await connection.call(b"AUTH", *user, server.password)
        if int(server.db):
            await connection.call(b"SELECT", int(server.db))
        if self._cache:
            try:
                await connection.track()
            except PipelineError as err:
                self._cache = False
                logger.warning("tasks/get reads Redis every time: %s (CLIENT TRACKING)", err)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _span_attributes(server: Connection | UnixDomainSocketConnection) -> dict[str, AttributeValue]:
    """The attributes opentelemetry-instrumentation-redis gives a GET's span."""
    attributes: dict[str, AttributeValue] = {
        "db.statement": "GET ?",
        "db.redis.args_length": 2,
        "db.system": "redis",
        "db.redis.database_index": int(server.db),
    }
    if isinstance(server, UnixDomainSocketConnection):
        return {**attributes, "net.peer.name": server.path, "net.transport": "other"}
    return {
        **attributes,
        "net.peer.name": server.host,
        "net.peer.port": int(server.port),
        "net.transport": "ip_tcp",
    }
