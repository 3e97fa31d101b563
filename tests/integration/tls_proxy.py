"""A TLS terminator in front of the Temporal dev server, for the tests of Temporal over TLS and mTLS:
certificates made with `cryptography` (a CA, the server's for 127.0.0.1 under a name of its own, a
client's), and an asyncio proxy that accepts TLS (ALPN h2, optionally requiring a client certificate
the CA signed) and pipes the decrypted bytes to the dev server's plaintext gRPC port, in a thread of
its own so that subprocesses and in-process clients alike can reach it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.devstack.processes import free_port

HOST = "127.0.0.1"
# The name the server's certificate is issued to; clients verify it with TEMPORAL_TLS_SERVER_NAME.
SERVER_NAME = "temporal.a2a.test"
_PIPE_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    usage: x509.ObjectIdentifier | None = None,
    names: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer or (name, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is None:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_certificates(directory: Path, ca_name: str = "a2a test CA") -> Certificates:
    """A CA and the server's and a client's certificates and keys it signed, as PEM files."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue(ca_name, ca_key, None)
    issuer = (ca.subject, ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _issue(
        SERVER_NAME,
        server_key,
        issuer,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        names=[x509.DNSName(SERVER_NAME), x509.IPAddress(ipaddress.ip_address(HOST))],
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _issue("a2a test client", client_key, issuer, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    files = Certificates(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
    )
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files.server_key.write_bytes(_key_pem(server_key))
    files.client_cert.write_bytes(client.public_bytes(serialization.Encoding.PEM))
    files.client_key.write_bytes(_key_pem(client_key))
    return files


def server_context(certificates: Certificates, *, require_client_cert: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates.server_cert, certificates.server_key)
    context.set_alpn_protocols(["h2"])
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(certificates.ca)
    return context


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_PIPE_CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@dataclass
class TlsProxy:
    """Where the proxy listens, and how many TLS handshakes it completed (a client that went around
    it would not count)."""

    address: str
    handshakes: int = 0


@contextlib.contextmanager
def tls_proxy(
    upstream: str, certificates: Certificates, *, require_client_cert: bool = True
) -> Iterator[TlsProxy]:
    """A TLS terminator for the plaintext gRPC server at `upstream` (`host:port`), on a free port."""
    context = server_context(certificates, require_client_cert=require_client_cert)
    upstream_host, _, upstream_port = upstream.rpartition(":")
    port = free_port(HOST)
    proxy = TlsProxy(f"{HOST}:{port}")
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stopped = asyncio.Event()

    async def serve_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        proxy.handshakes += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(upstream_host, int(upstream_port))
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def run() -> None:
        server = await asyncio.start_server(serve_client, HOST, port, ssl=context)
        ready.set()
        async with server:
            await stopped.wait()
        pipes = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pipes:
            task.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError(f"the TLS proxy did not start on {proxy.address}")
    try:
        yield proxy
    finally:
        loop.call_soon_threadsafe(stopped.set)
        thread.join(10)
        loop.close()
