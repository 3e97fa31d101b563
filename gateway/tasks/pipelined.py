"""GETs over one pipelined Redis connection: the read `tasks/get` makes on every call.

redis-py spends about 100-140 µs of CPU on a GET (its pool, retry wrapper and response parsing);
writing each command at once on one connection and matching replies to callers in order costs about
20-30 µs. Only plain `redis://` and `unix://` URLs are served this way; for the others (TLS) the
gateway keeps redis-py.

A lost connection fails the calls waiting on it (the caller falls back, as for any Redis error) and
the next call connects again. A caller that gives up (its timeout) leaves its reply to be read and
dropped, so the replies after it still reach their callers.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import hiredis


class PipelineError(ConnectionError):
    """The connection failed or Redis answered with an error."""


class _ErrorReply(Exception):
    """What the reader makes of an error reply. Our own class: in a test process that had run a good
    part of the suite, the reader's replies were of a `ReplyError` class other than the one
    `hiredis.ReplyError` named (hiredis keeps its default class in module state)."""


def pipelined_address(url: str) -> dict[str, Any] | None:
    """How to reach the Redis of `url`: host/port or path, db, username, password; None for a URL this
    module does not serve (TLS, or anything but redis:// and unix://)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "unix"):
        return None
    query = dict(pair.split("=", 1) for pair in parts.query.split("&") if "=" in pair)
    db = query.get("db") or (parts.path.lstrip("/") if parts.scheme == "redis" else "") or "0"
    if not db.isdigit():
        return None
    address: dict[str, Any] = {
        "db": int(db),
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }
    if parts.scheme == "unix":
        address["path"] = unquote(parts.path)
    else:
        address["host"] = parts.hostname or "localhost"
        address["port"] = parts.port or 6379
    return address


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self._reader = hiredis.Reader(replyError=_ErrorReply)
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they have the same methods.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            waiter = self._waiting.popleft()
            if waiter.done():
                continue
            if isinstance(reply, _ErrorReply):
                waiter.set_exception(PipelineError(f"Redis answered: {reply}"))
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(PipelineError(f"connection to Redis lost: {exc or 'closed'}"))

    def call(self, *args: bytes | str | int) -> asyncio.Future[Any]:
        if self.lost or self._transport is None:
            raise PipelineError("connection to Redis lost")
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        # hiredis's stub types the argument as a 1-tuple; it takes any number.
        self._transport.write(hiredis.pack_command(cast(Any, args)))
        return waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class PipelinedReader:
    """GET over one connection, opened on first use and again after it is lost."""

    def __init__(self, address: dict[str, Any]) -> None:
        self._address = address
        self._connection: _Connection | None = None
        self._connecting: asyncio.Lock | None = None

    async def get(self, key: bytes | str) -> bytes | None:
        connection = self._connection
        if connection is None or connection.lost:
            connection = await self._connect()
        reply: bytes | None = await connection.call(b"GET", key)
        return reply

    async def _connect(self) -> _Connection:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._connection is not None and not self._connection.lost:
                return self._connection
            loop = asyncio.get_running_loop()
            address = self._address
            try:
                if "path" in address:
                    _, connection = await loop.create_unix_connection(_Connection, address["path"])
                else:
                    _, connection = await loop.create_connection(
                        _Connection, address["host"], address["port"]
                    )
            except OSError as err:
                raise PipelineError(f"cannot connect to Redis: {err}") from err
            try:
                if address["password"] is not None:
                    credentials = [address["username"] or "default", address["password"]]
                    await connection.call(b"AUTH", *credentials)
                if address["db"]:
                    await connection.call(b"SELECT", address["db"])
            except BaseException:
                # Refused, or the caller's deadline passed mid-handshake.
                connection.close()
                raise
            self._connection = connection
            return connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
