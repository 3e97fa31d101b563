"""Delivers one push notification: a POST of the Task to the config's webhook (A2A 0.2.5 §9.5), to an
address the webhook policy checked.

The check and the connection use the same DNS answer: the host is resolved once, every address is
checked, and the TCP connection goes to a checked address, so a host that re-resolves to an internal
address between the two (DNS rebinding) reaches nothing. TLS still verifies the certificate against
the host name, and the Host header keeps the URL's host.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum

import httpcore
import httpx

from config.webhook_policy import (
    Resolver,
    WebhookPolicy,
    WebhookRefused,
    host_addresses,
    system_resolver,
)
from protocol import PushNotificationConfig

_DEFAULT_PORTS = {"https": 443, "http": 80}


class DeliveryOutcome(StrEnum):
    DELIVERED = "delivered"
    # Worth another attempt: 408, 429, 5xx, DNS, network, timeout.
    RETRY = "retry"
    # Another attempt would end the same: the receiver's other 4xx and redirects, or a token or
    # credentials no HTTP header can carry.
    REJECTED = "rejected"
    # The webhook policy refuses the URL or an address of its host; nothing was sent.
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    outcome: DeliveryOutcome
    # For logs: never carries the token or credentials.
    detail: str


def notification_headers(config: PushNotificationConfig) -> dict[str, str]:
    """The headers of a notification: `X-A2A-Notification-Token` when the config has a token, and
    `Authorization` for the first of `authentication.schemes` this sender supports (Bearer, Basic;
    any case) when there are credentials. Basic credentials "user:password" are base64-encoded;
    credentials without ':' are taken as encoded already."""
    headers = {"Content-Type": "application/json"}
    if config.token:
        headers["X-A2A-Notification-Token"] = config.token
    auth = config.authentication
    if auth is None or not auth.credentials:
        return headers
    for scheme in auth.schemes:
        if scheme.lower() == "bearer":
            headers["Authorization"] = f"Bearer {auth.credentials}"
            break
        if scheme.lower() == "basic":
            encoded = auth.credentials
            if ":" in encoded:
                encoded = base64.b64encode(encoded.encode()).decode("ascii")
            headers["Authorization"] = f"Basic {encoded}"
            break
    return headers


@dataclass(frozen=True, slots=True)
class _Pin:
    host: str
    port: int
    addresses: tuple[str, ...]


# Per task, so concurrent sends through one client each connect to their own checked addresses.
_pin: ContextVar[_Pin | None] = ContextVar("webhook_pin", default=None)


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the addresses pinned for the current send, in order until one answers; any other
    host fails to connect rather than being looked up."""

    def __init__(self) -> None:
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface passes it by name)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        pin = _pin.get()
        if pin is None or (host, port) != (pin.host, pin.port) or not pin.addresses:
            raise httpcore.ConnectError(f"no checked address for {host}:{port}")
        *earlier, last = pin.addresses
        for address in earlier:
            with contextlib.suppress(httpcore.ConnectError, httpcore.ConnectTimeout):
                return await self._backend.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
        return await self._backend.connect_tcp(last, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are reached over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        # httpx 0.28 takes no network backend (encode/httpx#3749 adds one): the pool the transport
        # sends through is replaced by the same pool on the pinning backend.
        limits = httpx.Limits()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_PinnedBackend(),
        )


class WebhookSender:
    def __init__(
        self,
        policy: WebhookPolicy,
        *,
        resolver: Resolver = system_resolver,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`timeout` bounds a whole send, DNS included. `ssl_context` decides which certificates
        are trusted (default: certifi's CAs, as httpx)."""
        self._policy = policy
        self._resolver = resolver
        self._timeout = timeout
        context = httpx.create_ssl_context(trust_env=False) if ssl_context is None else ssl_context
        # Nothing from the environment: a proxy (HTTPS_PROXY...) would resolve the host itself.
        self._client = httpx.AsyncClient(
            transport=_PinnedTransport(context),
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
        )

    async def send(self, config: PushNotificationConfig, body: bytes) -> DeliveryResult:
        """POST `body` to `config.url` with the config's headers. Never raises for what happens
        on the way: refusals, DNS and network errors and the receiver's answer all come back as a
        result (2xx delivered; 408, 429, 5xx, DNS, network, timeout retry; other 4xx and 3xx
        rejected, redirects never followed)."""
        try:
            async with asyncio.timeout(self._timeout):
                return await self._send(config, body)
        except TimeoutError:
            return DeliveryResult(DeliveryOutcome.RETRY, f"timed out after {self._timeout}s")

    async def _send(self, config: PushNotificationConfig, body: bytes) -> DeliveryResult:
        try:
            host, port = self._policy.check_url(config.url)
            url = _same_target(config.url, host, port)
        except WebhookRefused as err:
            return DeliveryResult(DeliveryOutcome.REFUSED, f"refused: {err}")
        headers = notification_headers(config)
        if not all(value.isascii() and value.isprintable() for value in headers.values()):
            return DeliveryResult(
                DeliveryOutcome.REJECTED,
                "the token or credentials are not printable ASCII; no HTTP header can carry them",
            )
        try:
            addresses = await host_addresses(host, port, self._resolver)
        except OSError as err:
            return DeliveryResult(DeliveryOutcome.RETRY, f"DNS: {host}: {err}")
        try:
            for address in addresses:
                self._policy.check_address(address, host)
        except WebhookRefused as err:
            return DeliveryResult(DeliveryOutcome.REFUSED, f"refused: {err}")
        pinned = _pin.set(_Pin(url.raw_host.decode("ascii"), port, tuple(addresses)))
        try:
            # Each address gets an equal share of the deadline to connect, so a silent first
            # address leaves time for the next.
            timeout = httpx.Timeout(self._timeout, connect=self._timeout / len(addresses))
            return await self._post(url, headers, body, timeout)
        finally:
            _pin.reset(pinned)

    async def _post(
        self, url: httpx.URL, headers: dict[str, str], body: bytes, timeouts: httpx.Timeout
    ) -> DeliveryResult:
        try:
            # Streamed so the response body, which nobody reads, is never buffered.
            async with self._client.stream(
                "POST", url, headers=headers, content=body, timeout=timeouts
            ) as response:
                return _result(response)
        except httpx.TimeoutException:
            return DeliveryResult(DeliveryOutcome.RETRY, f"timed out after {self._timeout}s")
        except httpx.ConnectError as err:
            return DeliveryResult(DeliveryOutcome.RETRY, f"connect error: {err}")
        except httpx.TransportError as err:
            return DeliveryResult(DeliveryOutcome.RETRY, f"{type(err).__name__}: {err}")

    async def aclose(self) -> None:
        await self._client.aclose()


def _same_target(raw_url: str, host: str, port: int) -> httpx.URL:
    """The URL as httpx reads it, refused unless httpx sees the host and port the policy checked."""
    try:
        url = httpx.URL(raw_url)
    except httpx.InvalidURL as err:
        raise WebhookRefused(
            "host", f"pushNotificationConfig.url: not a valid URL ({err})"
        ) from err
    seen = (url.raw_host.decode("ascii").lower(), url.port or _DEFAULT_PORTS.get(url.scheme))
    if seen != (host, port):
        raise WebhookRefused(
            "host",
            f"pushNotificationConfig.url: read as {seen[0]}:{seen[1]} by the HTTP client "
            f"but as {host}:{port} by the webhook policy",
        )
    return url


def _result(response: httpx.Response) -> DeliveryResult:
    status = response.status_code
    if 200 <= status < 300:
        return DeliveryResult(DeliveryOutcome.DELIVERED, f"HTTP {status}")
    if 300 <= status < 400:
        location = response.headers.get("Location")
        if location is None:
            return DeliveryResult(DeliveryOutcome.REJECTED, f"HTTP {status} not followed")
        return DeliveryResult(DeliveryOutcome.REJECTED, f"redirect to {location} not followed")
    if status in (408, 429) or status >= 500:
        return DeliveryResult(DeliveryOutcome.RETRY, f"HTTP {status}")
    return DeliveryResult(DeliveryOutcome.REJECTED, f"HTTP {status}")
