"""WebhookSender against real HTTP(S) receivers on loopback; only the DNS resolver (our seam) is fake."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from config.webhook_policy import Resolver, WebhookPolicy, system_resolver
from protocol import PushNotificationAuthenticationInfo, PushNotificationConfig
from workers.webhook_sender import (
    DeliveryOutcome,
    DeliveryResult,
    WebhookSender,
    notification_headers,
)

LOOPBACK = "127.0.0.1"
BODY = b'{"id":"t-1","contextId":"c-1","status":{"state":"completed"},"kind":"task"}'
HINT = "the webhook policy refuses it (A2A_PUSH_ALLOWLIST admits addresses or hosts)"
USER_AGENT = f"python-httpx/{httpx.__version__}"


@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A minimal HTTP/1.1 server: records each request, answers `status` and closes."""

    status: int = 204
    extra_headers: tuple[tuple[str, str], ...] = ()
    hold: bool = False
    requests: list[Received] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None) -> None:
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)
        self._server = await asyncio.start_server(self._handle, host, port, ssl=tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        self._release.set()
        await asyncio.gather(*self._handlers)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.split("\r\n")[:-2]
            method, target, _ = request_line.split(" ")
            headers = {}
            for line in lines:
                name, _, value = line.partition(":")
                headers[name.lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Received(method, target, headers, body))
            if self.hold:
                await self._release.wait()
            extra = "".join(f"{name}: {value}\r\n" for name, value in self.extra_headers)
            writer.write(
                f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\nConnection: close\r\n"
                f"{extra}\r\n".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()


StartReceiver = Callable[..., Awaitable[Receiver]]
MakeSender = Callable[..., WebhookSender]


@pytest.fixture
async def start_receiver() -> AsyncIterator[StartReceiver]:
    started: list[Receiver] = []

    async def start(
        *,
        host: str = LOOPBACK,
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        status: int = 204,
        extra_headers: Iterable[tuple[str, str]] = (),
        hold: bool = False,
    ) -> Receiver:
        receiver = Receiver(status=status, extra_headers=tuple(extra_headers), hold=hold)
        await receiver.start(host, port, tls)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        await receiver.stop()


@pytest.fixture
async def make_sender() -> AsyncIterator[MakeSender]:
    senders: list[WebhookSender] = []

    def make(
        allowlist: Iterable[str] = ("127.0.0.1/32",),
        *,
        allow_http: bool = True,
        resolver: Resolver | None = None,
        timeout: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> WebhookSender:
        sender = WebhookSender(
            WebhookPolicy.parse(allow_http, allowlist),
            resolver=resolver or FakeDNS({}),
            timeout=timeout,
            ssl_context=ssl_context,
        )
        senders.append(sender)
        return sender

    yield make
    for sender in senders:
        await sender.aclose()


class FakeDNS:
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        await asyncio.sleep(0)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.answers[host]


def config(
    url: str,
    *,
    token: str | None = None,
    schemes: list[str] | None = None,
    credentials: str | None = None,
) -> PushNotificationConfig:
    auth = None
    if schemes is not None:
        auth = PushNotificationAuthenticationInfo(schemes=schemes, credentials=credentials)
    return PushNotificationConfig(url=url, token=token, authentication=auth)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
    return port


def base_headers(host: str) -> dict[str, str]:
    return {
        "host": host,
        "accept": "*/*",
        "accept-encoding": "gzip, deflate",
        "connection": "keep-alive",
        "user-agent": USER_AGENT,
        "content-length": str(len(BODY)),
        "content-type": "application/json",
    }


async def test_send_token_and_bearer_headers_and_body_exact(
    start_receiver: StartReceiver, make_sender: MakeSender
) -> None:
    receiver = await start_receiver()
    sender = make_sender()
    push = config(
        f"http://127.0.0.1:{receiver.port}/a2a/push?task=t-1",
        token="tok-123",
        schemes=["bearer"],
        credentials="eyJhbGciOi.payload.sig",
    )

    result = await sender.send(push, BODY)

    assert result == DeliveryResult(DeliveryOutcome.DELIVERED, "HTTP 204")
    assert receiver.requests == [
        Received(
            "POST",
            "/a2a/push?task=t-1",
            base_headers(f"127.0.0.1:{receiver.port}")
            | {
                "x-a2a-notification-token": "tok-123",
                "authorization": "Bearer eyJhbGciOi.payload.sig",
            },
            BODY,
        )
    ]


@pytest.mark.parametrize(
    ("schemes", "credentials", "authorization"),
    [
        (["Basic"], "user:pass", "Basic dXNlcjpwYXNz"),
        (["Digest", "BASIC"], "dXNlcjpwYXNz", "Basic dXNlcjpwYXNz"),
        (["Digest", "Bearer", "Basic"], "abc", "Bearer abc"),
    ],
)
async def test_send_authorization_header_exact(
    start_receiver: StartReceiver,
    make_sender: MakeSender,
    schemes: list[str],
    credentials: str,
    authorization: str,
) -> None:
    receiver = await start_receiver()
    sender = make_sender()
    push = config(f"http://127.0.0.1:{receiver.port}/", schemes=schemes, credentials=credentials)

    result = await sender.send(push, BODY)

    assert result == DeliveryResult(DeliveryOutcome.DELIVERED, "HTTP 204")
    assert receiver.requests == [
        Received(
            "POST",
            "/",
            base_headers(f"127.0.0.1:{receiver.port}") | {"authorization": authorization},
            BODY,
        )
    ]


@pytest.mark.parametrize(
    ("push", "headers"),
    [
        (config("https://h.example/"), {"Content-Type": "application/json"}),
        (
            config("https://h.example/", token="t", schemes=["Bearer"]),
            {"Content-Type": "application/json", "X-A2A-Notification-Token": "t"},
        ),
        (
            config("https://h.example/", schemes=["Digest", "OAuth"], credentials="x"),
            {"Content-Type": "application/json"},
        ),
        (
            config("https://h.example/", schemes=["basic"], credentials="ä:ö"),
            {"Content-Type": "application/json", "Authorization": "Basic w6Q6w7Y="},
        ),
    ],
)
def test_notification_headers_without_usable_auth_exact(
    push: PushNotificationConfig, headers: dict[str, str]
) -> None:
    assert notification_headers(push) == headers


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, DeliveryOutcome.DELIVERED),
        (202, DeliveryOutcome.DELIVERED),
        (204, DeliveryOutcome.DELIVERED),
        (500, DeliveryOutcome.RETRY),
        (503, DeliveryOutcome.RETRY),
        (429, DeliveryOutcome.RETRY),
        (408, DeliveryOutcome.RETRY),
        (404, DeliveryOutcome.REJECTED),
        (400, DeliveryOutcome.REJECTED),
        (401, DeliveryOutcome.REJECTED),
        (410, DeliveryOutcome.REJECTED),
    ],
)
async def test_send_status_classified(
    start_receiver: StartReceiver, make_sender: MakeSender, status: int, outcome: DeliveryOutcome
) -> None:
    receiver = await start_receiver(status=status)
    sender = make_sender()

    result = await sender.send(config(f"http://127.0.0.1:{receiver.port}/", token="secret"), BODY)

    assert result == DeliveryResult(outcome, f"HTTP {status}")
    assert len(receiver.requests) == 1


async def test_send_redirect_rejected_and_not_followed(
    start_receiver: StartReceiver, make_sender: MakeSender
) -> None:
    elsewhere = await start_receiver()
    location = f"http://127.0.0.1:{elsewhere.port}/elsewhere"
    receiver = await start_receiver(status=302, extra_headers=[("Location", location)])
    sender = make_sender()

    result = await sender.send(config(f"http://127.0.0.1:{receiver.port}/hook"), BODY)

    assert result == DeliveryResult(
        DeliveryOutcome.REJECTED, f"redirect to {location} not followed"
    )
    assert [r.target for r in receiver.requests] == ["/hook"]
    assert elsewhere.requests == []


async def test_send_receiver_not_listening_retry(make_sender: MakeSender) -> None:
    sender = make_sender()

    result = await sender.send(config(f"http://127.0.0.1:{free_port()}/"), BODY)

    assert result == DeliveryResult(
        DeliveryOutcome.RETRY, "connect error: All connection attempts failed"
    )


async def test_send_slow_receiver_retry_after_timeout(
    start_receiver: StartReceiver, make_sender: MakeSender
) -> None:
    receiver = await start_receiver(hold=True)
    sender = make_sender(timeout=0.5)

    result = await sender.send(config(f"http://127.0.0.1:{receiver.port}/"), BODY)

    assert result == DeliveryResult(DeliveryOutcome.RETRY, "timed out after 0.5s")
    assert len(receiver.requests) == 1


async def test_send_host_resolving_to_private_address_refused_nothing_sent(
    start_receiver: StartReceiver, make_sender: MakeSender
) -> None:
    receiver = await start_receiver()
    dns = FakeDNS({"hooks.example": ["10.0.0.5"]})
    sender = make_sender(resolver=dns)

    result = await sender.send(config(f"http://hooks.example:{receiver.port}/"), BODY)

    assert result == DeliveryResult(
        DeliveryOutcome.REFUSED,
        f"refused: pushNotificationConfig.url: 10.0.0.5 (from 'hooks.example') is a private "
        f"address; {HINT}",
    )
    assert dns.calls == [("hooks.example", receiver.port)]
    assert receiver.requests == []


async def test_send_public_and_private_addresses_refused(
    start_receiver: StartReceiver, make_sender: MakeSender
) -> None:
    receiver = await start_receiver()
    dns = FakeDNS({"hooks.example": ["93.184.216.34", "::ffff:169.254.169.254"]})
    sender = make_sender(resolver=dns)

    result = await sender.send(config(f"http://hooks.example:{receiver.port}/"), BODY)

    assert result == DeliveryResult(
        DeliveryOutcome.REFUSED,
        "refused: pushNotificationConfig.url: ::ffff:169.254.169.254 (from 'hooks.example') is a "
        f"cloud metadata address (IPv4 169.254.169.254 inside IPv6); {HINT}",
    )
    assert receiver.requests == []


async def test_send_connects_to_checked_address_with_url_host(
    start_receiver: StartReceiver, make_sender: MakeSender
) -> None:
    receiver = await start_receiver()
    dns = FakeDNS({"hooks.example": [LOOPBACK]})
    sender = make_sender(["hooks.example"], resolver=dns)

    result = await sender.send(config(f"http://hooks.example:{receiver.port}/a2a"), BODY)

    assert result == DeliveryResult(DeliveryOutcome.DELIVERED, "HTTP 204")
    assert dns.calls == [("hooks.example", receiver.port)]
    assert receiver.requests == [
        Received("POST", "/a2a", base_headers(f"hooks.example:{receiver.port}"), BODY)
    ]


async def test_send_tries_checked_addresses_in_order(
    start_receiver: StartReceiver, make_sender: MakeSender
) -> None:
    receiver = await start_receiver()
    # Nothing listens on 127.0.0.2 at that port: the connection is refused, the next address answers.
    dns = FakeDNS({"hooks.example": ["127.0.0.2", LOOPBACK]})
    sender = make_sender(["127.0.0.0/8"], resolver=dns)

    result = await sender.send(config(f"http://hooks.example:{receiver.port}/"), BODY)

    assert result == DeliveryResult(DeliveryOutcome.DELIVERED, "HTTP 204")
    assert [r.headers["host"] for r in receiver.requests] == [f"hooks.example:{receiver.port}"]


async def test_send_concurrent_sends_each_reach_their_own_address(
    start_receiver: StartReceiver, make_sender: MakeSender
) -> None:
    first = await start_receiver()
    second = await start_receiver(host="127.0.0.2", port=first.port)
    dns = FakeDNS({"a.example": [LOOPBACK], "b.example": ["127.0.0.2"]})
    sender = make_sender(["127.0.0.0/8"], resolver=dns)
    hosts = ["a.example", "b.example"] * 5

    results = await asyncio.gather(
        *(sender.send(config(f"http://{host}:{first.port}/"), BODY) for host in hosts)
    )

    assert results == [DeliveryResult(DeliveryOutcome.DELIVERED, "HTTP 204")] * 10
    assert [r.headers["host"] for r in first.requests] == [f"a.example:{first.port}"] * 5
    assert [r.headers["host"] for r in second.requests] == [f"b.example:{first.port}"] * 5


async def test_send_literal_address_not_resolved(
    start_receiver: StartReceiver, make_sender: MakeSender
) -> None:
    receiver = await start_receiver()
    dns = FakeDNS({})
    sender = make_sender(resolver=dns)

    result = await sender.send(config(f"http://127.0.0.1:{receiver.port}/"), BODY)

    assert result == DeliveryResult(DeliveryOutcome.DELIVERED, "HTTP 204")
    assert dns.calls == []


async def test_send_literal_private_address_refused(make_sender: MakeSender) -> None:
    sender = make_sender()

    result = await sender.send(config("http://[::ffff:10.0.0.5]:8080/"), BODY)

    assert result == DeliveryResult(
        DeliveryOutcome.REFUSED,
        "refused: pushNotificationConfig.url: ::ffff:10.0.0.5 is a private address "
        f"(IPv4 10.0.0.5 inside IPv6); {HINT}",
    )


async def test_system_resolver_localhost_delivered(
    start_receiver: StartReceiver, make_sender: MakeSender
) -> None:
    receiver = await start_receiver()
    sender = make_sender(["127.0.0.0/8", "::1/128"], resolver=system_resolver)

    result = await sender.send(config(f"http://localhost:{receiver.port}/"), BODY)

    assert result == DeliveryResult(DeliveryOutcome.DELIVERED, "HTTP 204")
    assert [r.headers["host"] for r in receiver.requests] == [f"localhost:{receiver.port}"]


async def test_system_resolver_literal_address_returned() -> None:
    assert await system_resolver("127.0.0.1", 80) == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("answers", "detail"),
    [
        ({}, "DNS: hooks.example: [Errno -2] Name or service not known"),
        ({"hooks.example": []}, "DNS: hooks.example: no address"),
    ],
)
async def test_send_dns_failure_retry(
    make_sender: MakeSender, answers: dict[str, list[str]], detail: str
) -> None:
    sender = make_sender(resolver=FakeDNS(answers))

    result = await sender.send(config("http://hooks.example/"), BODY)

    assert result == DeliveryResult(DeliveryOutcome.RETRY, detail)


async def test_send_http_url_without_allow_http_refused(make_sender: MakeSender) -> None:
    sender = make_sender(allow_http=False)

    result = await sender.send(config("http://127.0.0.1:8080/"), BODY)

    assert result == DeliveryResult(
        DeliveryOutcome.REFUSED,
        "refused: pushNotificationConfig.url: scheme 'http' is not allowed; the webhook policy "
        "requires https (A2A_PUSH_ALLOW_HTTP admits http)",
    )


async def test_send_token_not_ascii_rejected_nothing_sent(
    start_receiver: StartReceiver, make_sender: MakeSender
) -> None:
    receiver = await start_receiver()
    sender = make_sender()

    result = await sender.send(config(f"http://127.0.0.1:{receiver.port}/", token="a\r\nb"), BODY)

    assert result == DeliveryResult(
        DeliveryOutcome.REJECTED,
        "the token or credentials are not printable ASCII; no HTTP header can carry them",
    )
    assert receiver.requests == []


@dataclass(frozen=True)
class Certificates:
    ca_pem: str
    server_context: ssl.SSLContext


def certificates(tmp_path: Path, name: str) -> Certificates:
    """A throwaway CA and a server certificate it signs for `name`."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test webhook CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_file = tmp_path / "server.pem"
    key_file = tmp_path / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)
    ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
    return Certificates(ca_pem, server_context)


async def test_send_https_pinned_address_verifies_host_name(
    tmp_path: Path, start_receiver: StartReceiver, make_sender: MakeSender
) -> None:
    certs = certificates(tmp_path, "hooks.example")
    receiver = await start_receiver(tls=certs.server_context)
    dns = FakeDNS({"hooks.example": [LOOPBACK]})
    sender = make_sender(
        ["hooks.example"],
        allow_http=False,
        resolver=dns,
        ssl_context=ssl.create_default_context(cadata=certs.ca_pem),
    )

    result = await sender.send(config(f"https://hooks.example:{receiver.port}/a2a"), BODY)

    assert result == DeliveryResult(DeliveryOutcome.DELIVERED, "HTTP 204")
    assert receiver.server_names == ["hooks.example"]
    assert receiver.requests == [
        Received("POST", "/a2a", base_headers(f"hooks.example:{receiver.port}"), BODY)
    ]


async def test_send_https_certificate_for_other_name_retry_nothing_sent(
    tmp_path: Path, start_receiver: StartReceiver, make_sender: MakeSender
) -> None:
    certs = certificates(tmp_path, "other.example")
    receiver = await start_receiver(tls=certs.server_context)
    dns = FakeDNS({"hooks.example": [LOOPBACK]})
    sender = make_sender(
        ["hooks.example"],
        allow_http=False,
        resolver=dns,
        ssl_context=ssl.create_default_context(cadata=certs.ca_pem),
    )

    result = await sender.send(config(f"https://hooks.example:{receiver.port}/a2a"), BODY)

    assert result.outcome is DeliveryOutcome.RETRY
    assert result.detail.startswith("connect error: [SSL: CERTIFICATE_VERIFY_FAILED]")
    assert "Hostname mismatch" in result.detail
    assert receiver.server_names == ["hooks.example"]
    assert receiver.requests == []
