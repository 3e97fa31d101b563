"""A JSON-RPC client for any A2A v0.2.5 (or, with `A2A-Version: 1.0` among its headers, 1.0) server: calls,
streaming calls read as server-sent events, and the agent card. Results are the wire JSON as dicts, not models: whatever another server adds or leaves out is
passed on for the caller to show."""

from __future__ import annotations

import errno
import os
import urllib.parse
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import httpx
import orjson
from httpx_sse import EventSource

DEFAULT_URL = "http://127.0.0.1:8000/"
CARD_PATH = ".well-known/agent.json"
# Where A2A 0.3 and 1.0 put the card.
CARD_V1_PATH = ".well-known/agent-card.json"
# Each allows 10 s to connect and to send; they differ in how long to wait for the answer.
# An agent card, tasks/get and tasks/cancel answer at once: a server silent for this long is not
# going to answer.
CALL_TIMEOUT = httpx.Timeout(10.0, read=30.0)
# A blocking message/send answers when the agent's turn ends, which may take minutes (tool calls, a
# model's long reply); past 10 minutes `a2a-gateway task get` is the better way to wait.
TURN_TIMEOUT = httpx.Timeout(10.0, read=600.0)
# A stream lasts as long as its task, and a server need not send anything between two events.
STREAM_TIMEOUT = httpx.Timeout(10.0, read=None)


class ClientError(Exception):
    """A call that did not return a result."""


class RpcError(ClientError):
    """The server answered with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None, *, status: int = 200) -> None:
        super().__init__(f"error {code}: {message}")
        self.code = code
        self.message = message
        self.data = data
        self.status = status


class TransportError(ClientError):
    """No JSON-RPC answer: the server could not be reached, or answered something else."""


def check_url(url: str) -> None:
    """Raise ValueError, saying what is wrong, unless `url` is one a request can go to: http or https,
    with a host, and a port (if any) in range."""
    try:
        # Parsed twice for the reason: "Invalid IPv6 URL" where httpx would say "Invalid port".
        urllib.parse.urlsplit(url)
        parsed = httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as err:
        raise ValueError(str(err)) from err
    if parsed.scheme not in ("http", "https"):
        raise ValueError("the scheme must be http or https")
    if not parsed.host:
        raise ValueError("it names no host")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise ValueError(f"port {parsed.port} is not in 1-65535")


def endpoint_url(url: str, agent: str | None = None) -> str:
    """The JSON-RPC endpoint: `url` itself, or this gateway's `/agents/<agent>` under it."""
    if agent is None:
        return url
    return f"{url.rstrip('/')}/agents/{urllib.parse.quote(agent, safe='')}"


def card_urls(endpoint: str, path: str = CARD_PATH) -> list[str]:
    """Where an endpoint's agent card may be: beside it (this gateway serves one under each
    `/agents/<name>`), then at the host's root (RFC 8615, where A2A 0.2.5 §5.3 and 1.0 put it)."""
    beside = f"{endpoint.rstrip('/')}/{path}"
    parts = urllib.parse.urlsplit(endpoint)
    root = urllib.parse.urlunsplit((parts.scheme, parts.netloc, f"/{path}", "", ""))
    return [beside] if root == beside else [beside, root]


class A2AClient:
    """Calls to one endpoint. A call, or a stream's start, that times out raises TransportError:
    `call_timeout` for the agent card and a call, `turn_timeout` for a blocking message/send (or 1.0
    SendMessage), STREAM_TIMEOUT for a stream."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        call_timeout: httpx.Timeout = CALL_TIMEOUT,
        turn_timeout: httpx.Timeout = TURN_TIMEOUT,
    ) -> None:
        self.url = url
        self._http = http
        self._headers = dict(headers or {})
        self._next_id = 0
        self._call_timeout = call_timeout
        self._turn_timeout = turn_timeout
        # The id of the last event a stream carried (SSE `id:`), to resume it with Last-Event-ID.
        self.last_event_id: str | None = None

    async def agent_card(self, path: str = CARD_PATH) -> dict[str, Any] | None:
        """The endpoint's agent card (0.2.5's, or at CARD_V1_PATH 1.0's), or None when no card answers
        where `card_urls` looks (a server that does not answer in time raises: it would not answer a
        call either)."""
        timeout = self._call_timeout
        for url in card_urls(self.url, path):
            try:
                response = await self._http.get(url, headers=self._headers, timeout=timeout)
                card = response.json() if response.status_code == 200 else None
            except httpx.TimeoutException as err:
                raise _unreachable(url, err, timeout) from err
            except (httpx.HTTPError, ValueError):
                continue
            if isinstance(card, dict):
                return card
        return None

    async def call(self, method: str, params: Mapping[str, Any]) -> Any:
        """The `result` of one JSON-RPC call."""
        timeout = self._turn_timeout if _waits_for_turn(method, params) else self._call_timeout
        try:
            response = await self._http.post(
                self.url, json=self._request(method, params), headers=self._headers, timeout=timeout
            )
        except httpx.HTTPError as err:
            raise _unreachable(self.url, err, timeout) from err
        return self._result(response.status_code, response.content, response.reason_phrase)

    async def stream(
        self, method: str, params: Mapping[str, Any], *, last_event_id: str | None = None
    ) -> AsyncGenerator[Any]:
        """The `result` of each event of a streaming call, as the events arrive (an event the stream
        ends inside is dropped, as the SSE spec says). A server that answers with plain JSON (an error,
        or a single result) yields that. `last_event_id`: resume a stream after that event; the id of
        the last event received is then in `last_event_id`."""
        request = self._request(method, params)
        headers = {**self._headers, "Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        timeout = STREAM_TIMEOUT
        try:
            async with self._http.stream(
                "POST", self.url, json=request, headers=headers, timeout=timeout
            ) as response:
                if not response.headers.get("content-type", "").startswith("text/event-stream"):
                    await response.aread()
                    yield self._result(
                        response.status_code, response.content, response.reason_phrase
                    )
                    return
                async for event in EventSource(response).aiter_sse():
                    if event.id:
                        self.last_event_id = event.id
                    # httpx-sse also yields events of a lone `id:` or `retry:`: no response in them.
                    if event.data:
                        yield self._result(200, event.data.encode(), "OK")
        except httpx.HTTPError as err:
            raise _unreachable(self.url, err, timeout) from err

    def _request(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        return {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}

    def _result(self, status: int, content: bytes, reason: str) -> Any:
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            code = error.get("code")
            raise RpcError(
                code if isinstance(code, int) else 0,
                str(error.get("message", "")),
                error.get("data"),
                status=status,
            )
        if status != 200:
            snippet = content[:200].decode(errors="replace").strip()
            detail = f": {snippet}" if snippet else ""
            raise TransportError(f"HTTP {status} {reason} from {self.url}{detail}")
        if not isinstance(body, dict) or "result" not in body:
            snippet = content[:200].decode(errors="replace").strip()
            raise TransportError(f"not a JSON-RPC response from {self.url}: {snippet}")
        return body["result"]


def _waits_for_turn(method: str, params: Mapping[str, Any]) -> bool:
    """A blocking send: 0.2.5's message/send with `blocking`, 1.0's SendMessage unless it is to
    `returnImmediately`."""
    configuration = params.get("configuration")
    config = configuration if isinstance(configuration, Mapping) else {}
    if method == "message/send":
        return config.get("blocking") is True
    return method == "SendMessage" and config.get("returnImmediately") is not True


def _unreachable(url: str, err: httpx.HTTPError, timeout: httpx.Timeout) -> TransportError:
    if isinstance(err, httpx.ConnectTimeout):
        return TransportError(f"cannot connect to {url}: no answer within {timeout.connect:g} s")
    if isinstance(err, httpx.ReadTimeout):
        return TransportError(f"no answer from {url} within {timeout.read:g} s")
    if isinstance(err, httpx.ConnectError):
        return TransportError(f"cannot connect to {url}: {describe(err)}")
    return TransportError(f"connection to {url} failed: {describe(err)}")


def describe(err: BaseException) -> str:
    """The most telling reason in an exception's chain: "Connection refused" rather than httpx's "All
    connection attempts failed"."""
    reason = str(err) or type(err).__name__
    cause: BaseException | None = err
    while cause is not None:
        if (
            isinstance(cause, OSError)
            and cause.errno is not None
            and cause.errno in errno.errorcode
        ):
            # asyncio's ConnectionRefusedError says "Connect call failed (...)": the errno says more.
            reason = os.strerror(cause.errno)
        elif isinstance(cause, OSError) and cause.strerror:
            reason = cause.strerror
        cause = cause.__cause__ or cause.__context__
    return reason
