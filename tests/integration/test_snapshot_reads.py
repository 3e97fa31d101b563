"""The snapshot reads of `tasks/get` on a real Redis: the pipelined connection (replies matched to
callers in order, through errors, abandoned calls, a lost connection, AUTH and SELECT; over TCP, TLS
and a Unix socket, the URL read as redis-py reads it; a span for each read when traced), the values it
keeps while Redis tracks them (dropped on Redis's word: a write, an expiry, a flush; on a lost
connection; and when Redis stops answering), and the gateway's memory of terminal tasks."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio import Redis

import gateway.tasks.pipelined
import gateway.tasks.store
from gateway.devstack.processes import DevStackError, ManagedProcess, free_port, redis_binary
from gateway.tasks.pipelined import PipelinedReader, PipelineError
from gateway.tasks.store import TaskStore
from protocol import Task, TaskState, TaskStatus, task_snapshot_key
from tests.conftest import HOST, unavailable
from tests.waiting import eventually

PASSWORD = "s3cret/pass"


@pytest.fixture
async def reader(redis_url: str) -> AsyncIterator[PipelinedReader]:
    pipelined = PipelinedReader(redis_url)
    yield pipelined
    pipelined.close()


def key() -> str:
    return f"test:pipelined:{uuid.uuid4()}"


async def test_concurrent_gets_each_get_their_own_value(
    redis: Redis, reader: PipelinedReader
) -> None:
    keys = [key() for _ in range(200)]
    for index, name in enumerate(keys[::2]):
        await redis.set(name, f"value {index}")
    values = await asyncio.gather(*(reader.get(name) for name in keys))
    assert values == [
        f"value {index // 2}".encode() if index % 2 == 0 else None for index in range(200)
    ]


async def test_an_error_reply_fails_its_caller_only(redis: Redis, reader: PipelinedReader) -> None:
    listed, plain = key(), key()
    await redis.rpush(listed, "x")
    await redis.set(plain, "after")
    results = await asyncio.gather(reader.get(listed), reader.get(plain), return_exceptions=True)
    assert isinstance(results[0], PipelineError)
    assert str(results[0]).startswith("Redis answered: WRONGTYPE")
    assert results[1] == b"after"


async def test_an_abandoned_call_does_not_shift_the_replies(
    redis: Redis, reader: PipelinedReader
) -> None:
    first, second = key(), key()
    await redis.set(first, "first")
    await redis.set(second, "second")
    assert await reader.get(first) == b"first"  # connected
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0):
            await reader.get(first)
    assert await reader.get(second) == b"second"
    assert await reader.get(first) == b"first"


async def test_a_killed_connection_fails_its_callers_and_the_next_call_reconnects(
    redis: Redis, reader: PipelinedReader
) -> None:
    name = key()
    await redis.set(name, "v")
    assert await reader.get(name) == b"v"
    assert reader.cached(name) == b"v"
    # Only the reader's connection: the session's workers share this Redis.
    connection = reader._connection
    assert connection is not None
    assert connection._transport is not None
    host, port = connection._transport.get_extra_info("sockname")[:2]
    assert await redis.client_kill_filter(addr=f"{host}:{port}") == 1
    for _ in range(500):  # until the reader has seen the connection close
        if connection.lost:
            break
        await asyncio.sleep(0.01)
    assert connection.lost
    # Redis tracked the reads of that connection only: what it kept went with it.
    assert reader.cached(name) is None
    assert await reader.get(name) == b"v"
    assert reader._connection is not connection
    assert reader.cached(name) == b"v"


async def test_user_and_database_from_the_url(redis: Redis, redis_url: str) -> None:
    user, name = f"reader-{uuid.uuid4().hex[:8]}", key()
    await redis.acl_setuser(
        user, enabled=True, passwords=[f"+{PASSWORD}"], keys=["*"], commands=["+@all"]
    )
    server = urlsplit(redis_url).netloc
    other = Redis.from_url(f"redis://{server}/3")
    try:
        await other.set(name, "in db 3")
        pipelined = PipelinedReader(f"redis://{user}:{quote(PASSWORD, safe='')}@{server}/3")
        assert await pipelined.get(name) == b"in db 3"
        pipelined.close()
        refused = PipelinedReader(f"redis://{user}:wrong@{server}/3")
        with pytest.raises(PipelineError, match="WRONGPASS"):
            await refused.get(name)
        refused.close()
    finally:
        await other.delete(name)
        await other.aclose()
        await redis.acl_deluser(user)


@dataclass(frozen=True)
class PrivateRedis:
    """A Redis of this module's own, with a password for the default user: TLS on `tls_port` (its
    certificate, for 127.0.0.1, in `certificate`) and a Unix socket at `socket`, no plain TCP."""

    tls_port: int
    socket: Path
    certificate: Path

    def urls(self, db: int) -> dict[str, str]:
        password = quote(PASSWORD, safe="")
        return {
            "rediss": f"rediss://:{password}@{HOST}:{self.tls_port}/{db}"
            f"?ssl_ca_certs={self.certificate}",
            "unix": f"unix://:{password}@{self.socket}?db={db}",
        }


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own issuer, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test redis")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "redis.pem", directory / "redis.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    # A short directory: a Unix socket's path is limited to about 100 bytes.
    directory = tmp_path_factory.mktemp("r")
    cert_file, key_file = self_signed(directory)
    port = free_port(HOST)
    args = [
        redis_binary(),
        "--bind", HOST,
        "--port", "0",
        "--tls-port", str(port),
        "--tls-cert-file", str(cert_file),
        "--tls-key-file", str(key_file),
        "--tls-auth-clients", "no",
        "--unixsocket", str(directory / "redis.sock"),
        "--requirepass", PASSWORD,
        "--save", "",
        "--appendonly", "no",
        "--dir", str(directory),
    ]  # fmt: skip
    with (directory / "redis.log").open("wb") as log:
        server = ManagedProcess("Redis with TLS", args, log=log)
    try:
        server.wait_for_port(HOST, port)
    except DevStackError as err:
        unavailable(f"Redis with TLS unavailable (see {directory / 'redis.log'}): {err}")
    try:
        yield PrivateRedis(port, directory / "redis.sock", cert_file)
    finally:
        server.stop()


async def dropped(reader: PipelinedReader, name: str) -> None:
    """Until the reader no longer serves `name` from memory: at most 3 s, three times the longest a
    value is served without Redis's word that it is current (asking renews that word)."""
    await eventually(
        lambda: reader.cached(name) is None,
        3,
        interval=0.005,
        what=f"{name} to be no longer served from memory",
    )


async def test_a_value_read_is_kept_until_redis_says_it_changed(
    redis: Redis, reader: PipelinedReader
) -> None:
    written, expiring, other = key(), key(), key()
    await redis.set(written, "first")
    await redis.set(expiring, "short-lived", px=300)
    await redis.set(other, "untouched")
    assert [await reader.get(name) for name in (written, expiring, other)] == [
        b"first",
        b"short-lived",
        b"untouched",
    ]
    assert [reader.cached(name) for name in (written, expiring, other)] == [
        b"first",
        b"short-lived",
        b"untouched",
    ]
    assert reader.cached(key()) is None  # never read
    await redis.set(written, "second")
    await dropped(reader, written)
    assert reader.cached(other) == b"untouched"
    assert await reader.get(written) == b"second"
    assert reader.cached(written) == b"second"
    # Redis deletes an expired key when it is next touched (or its expiry cycle samples it: in a busy
    # Redis that can take a while), and then tells.
    await asyncio.sleep(0.3)
    assert await redis.exists(expiring) == 0
    await dropped(reader, expiring)
    assert await reader.get(expiring) is None
    assert reader.cached(expiring) is None  # a missing key is not kept


async def test_a_flush_drops_every_value(private_redis: PrivateRedis) -> None:
    url = private_redis.urls(db=0)["unix"]
    other, pipelined = Redis.from_url(url), PipelinedReader(url)
    try:
        names = [key() for _ in range(3)]
        for name in names:
            await other.set(name, name)
            assert await pipelined.get(name) == name.encode()
        await other.flushall()
        for name in names:
            await dropped(pipelined, name)
    finally:
        pipelined.close()
        await other.aclose()


async def test_values_are_served_without_redis_until_it_stops_answering(
    private_redis: PrivateRedis,
) -> None:
    url = private_redis.urls(db=0)["unix"]
    other, pipelined = Redis.from_url(url), PipelinedReader(url)
    store = TaskStore(other, reader=pipelined, ttl_seconds=60, timeout=5)
    try:
        task_id = str(uuid.uuid4())
        await other.set(task_snapshot_key(task_id), snapshot(task_id, TaskState.WORKING))
        assert (await store.get_wire(task_id) or {})["status"] == {"state": "working"}
        # Redis answers no client for 3 s. What was read is served meanwhile (a read of Redis would
        # wait out the pause), until a second after the last answer: the PINGs that would renew it
        # get none.
        assert await other.client_pause(3000, all=True)
        async with asyncio.timeout(0.2):
            assert (await store.get_wire(task_id) or {})["status"] == {"state": "working"}
        await dropped(pipelined, task_snapshot_key(task_id))
        # ...while Redis still answers nobody.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await other.ping()
        # Once Redis answers again: the reply to a read sent during the pause is current as of then,
        # over a second ago; the next one's is current.
        for _ in range(2):
            assert (await store.get_wire(task_id) or {})["status"] == {"state": "working"}
        assert pipelined.cached(task_snapshot_key(task_id)) is not None
    finally:
        pipelined.close()
        await other.aclose()


async def test_a_user_refused_client_tracking_reads_redis_every_time(
    redis: Redis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    user, name = f"untracked-{uuid.uuid4().hex[:8]}", key()
    await redis.acl_setuser(
        user, enabled=True, passwords=[f"+{PASSWORD}"], keys=["*"], commands=["+@all", "-client"]
    )
    server = urlsplit(redis_url).netloc
    pipelined = PipelinedReader(f"redis://{user}:{quote(PASSWORD, safe='')}@{server}/0")
    try:
        await redis.set(name, "v")
        assert await pipelined.get(name) == b"v"
        assert pipelined.cached(name) is None
        (warning,) = [r for r in caplog.records if r.name == "gateway.tasks.pipelined"]
        assert warning.getMessage().startswith(
            "tasks/get reads Redis every time: Redis answered: NOPERM"
        )
        assert warning.getMessage().endswith("(CLIENT TRACKING)")
        await redis.set(name, "w")
        assert await pipelined.get(name) == b"w"
    finally:
        pipelined.close()
        await redis.delete(name)
        await redis.acl_deluser(user)


@pytest.mark.parametrize("scheme", ["rediss", "unix"])
async def test_tls_and_unix_socket_urls_reach_the_same_database_as_redis_py(
    private_redis: PrivateRedis, scheme: str
) -> None:
    url, name = private_redis.urls(db=2)[scheme], key()
    other = Redis.from_url(url)
    pipelined = PipelinedReader(url)
    try:
        await other.set(name, f"over {scheme}")
        assert await pipelined.get(name) == f"over {scheme}".encode()
    finally:
        pipelined.close()
        await other.delete(name)
        await other.aclose()


async def test_tls_checks_the_server_certificate(private_redis: PrivateRedis) -> None:
    untrusted = PipelinedReader(private_redis.urls(db=0)["rediss"].split("?")[0])
    with pytest.raises(PipelineError, match="CERTIFICATE_VERIFY_FAILED"):
        await untrusted.get(key())
    untrusted.close()


async def test_a_traced_read_is_a_span_like_redis_py_s(
    redis: Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, exporter = TracerProvider(), InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(gateway.tasks.pipelined, "tracer", provider.get_tracer(__name__))
    listed = key()
    await redis.rpush(listed, "x")
    pipelined = PipelinedReader(redis_url, traced=True)
    try:
        assert await pipelined.get(key()) is None
        with pytest.raises(PipelineError):
            await pipelined.get(listed)
    finally:
        pipelined.close()
    server = urlsplit(redis_url)
    # What opentelemetry-instrumentation-redis records of redis-py's GET.
    expected = {
        "db.statement": "GET ?",
        "db.redis.args_length": 2,
        "db.system": "redis",
        "db.redis.database_index": int(server.path.lstrip("/") or 0),
        "net.peer.name": server.hostname,
        "net.peer.port": server.port,
        "net.transport": "ip_tcp",
    }
    found, failed = exporter.get_finished_spans()
    for span in (found, failed):
        assert (span.name, span.kind) == ("GET", trace.SpanKind.CLIENT)
        assert dict(span.attributes or {}) == expected
    assert found.status.status_code is trace.StatusCode.UNSET
    assert failed.status.status_code is trace.StatusCode.ERROR


def snapshot(task_id: str, state: TaskState) -> bytes:
    task = Task(id=task_id, contextId="c", status=TaskStatus(state=state))
    return orjson.dumps(task.to_wire())


@pytest.fixture
async def uncached_reader(redis_url: str) -> AsyncIterator[PipelinedReader]:
    """A reader without its memory of what Redis tracks (the tests above)."""
    pipelined = PipelinedReader(redis_url, cache=False)
    yield pipelined
    pipelined.close()


async def test_a_terminal_task_is_remembered_and_a_running_one_is_read_each_time(
    redis: Redis, uncached_reader: PipelinedReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = TaskStore(redis, reader=uncached_reader, ttl_seconds=60, timeout=5)
    running, done = str(uuid.uuid4()), str(uuid.uuid4())
    await redis.set(task_snapshot_key(running), snapshot(running, TaskState.WORKING))
    await redis.set(task_snapshot_key(done), snapshot(done, TaskState.COMPLETED))
    assert (await store.get_wire(running) or {})["status"] == {"state": "working"}
    assert (await store.get_wire(done) or {})["status"] == {"state": "completed"}

    # Only a worker or the workflow writes snapshots, and never over a terminal one; this stands in
    # for a change that would be visible were the terminal task read again.
    await redis.set(task_snapshot_key(running), snapshot(running, TaskState.INPUT_REQUIRED))
    await redis.delete(task_snapshot_key(done))
    assert (await store.get_wire(running) or {})["status"] == {"state": "input-required"}
    assert (await store.get_wire(done) or {})["status"] == {"state": "completed"}

    monkeypatch.setattr(gateway.tasks.store, "TERMINAL_CACHE_SECONDS", 0.0)
    other = str(uuid.uuid4())
    await redis.set(task_snapshot_key(other), snapshot(other, TaskState.CANCELED))
    assert (await store.get_wire(other) or {})["status"] == {"state": "canceled"}
    await redis.delete(task_snapshot_key(other))
    assert await store.get_wire(other) is None
