"""A gateway process's limits on streams, against real gateway processes: a client that stops reading is
cut off (without holding up anyone else's stream) and resumes with Last-Event-ID; streams beyond the
process's cap are answered 503 with Retry-After."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from redis.asyncio import Redis

from gateway.devstack.processes import free_port
from tests.integration.conftest import LaunchGateway
from tests.integration.eventlog import count, log_entries, read_until
from tests.integration.sse import (
    Frame,
    GatewayProcess,
    SSEResponse,
    echo_message,
    parse_frames,
    read_stream,
    rpc_body,
    stream_frames,
)
from tests.integration.test_browser_stream import (
    events_url,
    expected_frames,
    finished_log,
    opened,
    start_task,
)
from tests.waiting import eventually

SLOW_CONSUMER = Frame(
    None, None, ["closed: this client fell behind; reconnect with Last-Event-ID to resume"]
)
BUSY = {
    "code": -32000,
    "message": "Server busy: this gateway process is at its limit of concurrent streams (1); "
    "retry in a moment (any replica can serve the task)",
}


@pytest.fixture(scope="module")
def small_buffer_gateway(launch_gateway: LaunchGateway) -> Iterator[GatewayProcess]:
    with launch_gateway(
        "small-buffer",
        {
            "A2A_GATEWAY_STREAM_BUFFER_EVENTS": "8",
            "A2A_GATEWAY_STREAM_WRITE_TIMEOUT_SECONDS": "5",
        },
    ) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def one_stream_gateway(launch_gateway: LaunchGateway) -> Iterator[GatewayProcess]:
    with launch_gateway("one-stream", {"A2A_GATEWAY_MAX_STREAMS": "1"}) as gateway:
        yield gateway


@dataclass
class RawResponse:
    status_code: int
    headers: dict[str, str]
    # The SSE frames that arrived whole.
    frames: list[Frame]
    # Whether the chunked body ended with its last chunk (False: the connection was dropped).
    complete: bool


@contextlib.asynccontextmanager
async def stalled_get(url: str) -> AsyncIterator[socket.socket]:
    """A GET whose client takes nothing off its socket until the caller reads.

    Set before connecting, a small receive buffer and a small MSS keep the kernel's buffers on both
    ends of the connection small: loopback's 64 KiB MSS would have the gateway's end hold megabytes.
    """
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1460)
        sock.setblocking(False)
        await loop.sock_connect(sock, (parts.hostname, parts.port))
        request = (
            f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Accept: text/event-stream\r\nConnection: close\r\n\r\n"
        )
        await loop.sock_sendall(sock, request.encode())
        yield sock
    finally:
        sock.close()


async def read_to_end(sock: socket.socket) -> RawResponse:
    """Everything the server sends until it closes the connection, as an HTTP/1.1 chunked response."""
    loop = asyncio.get_running_loop()
    received = bytearray()
    while data := await loop.sock_recv(sock, 1 << 20):
        received += data
    head, separator, body = bytes(received).partition(b"\r\n\r\n")
    assert separator, received[:200]
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    assert headers["transfer-encoding"] == "chunked"
    text, complete = _unchunked(body)
    whole, _, _ = text.rpartition("\n\n")
    return RawResponse(int(status_line.split()[1]), headers, parse_frames(whole), complete)


def _unchunked(body: bytes) -> tuple[str, bool]:
    content = bytearray()
    while True:
        size_line, separator, rest = body.partition(b"\r\n")
        if not separator:
            return content.decode(), False
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return content.decode(), True
        content += rest[:size]
        if len(rest) < size + 2:
            return content.decode(), False
        body = rest[size + 2 :]


async def test_slow_reader_is_cut_off_without_slowing_others_then_resumes_exactly_once(
    small_buffer_gateway: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> None:
    """task.created alone (it carries the 350 kB text) overfills the socket buffers between the gateway
    and a client that reads nothing: the gateway's writes stall, far more than `STREAM_BUFFER_EVENTS`
    events pile up behind them, and it gives up on the client. Meanwhile another stream of the same
    process runs to its end."""
    gateway = small_buffer_gateway
    text = "".join(f"{index:07d}" for index in range(50_000))
    big = await start_task(sse_client, gateway, echo_message(text, chunks=100, delay=0.02))
    async with stalled_get(events_url(gateway, big["id"])) as slow:
        await read_until(redis, big["id"], count("task.progress", 20))
        other = await start_task(sse_client, gateway, echo_message("quick", chunks=5, delay=0.02))
        response = opened(
            await read_stream(sse_client, "GET", events_url(gateway, other["id"]), deadline=15)
        )
        assert response.complete
        assert response.frames == expected_frames(await log_entries(redis, other["id"]))
        log = await finished_log(redis, big["id"])
        async with asyncio.timeout(30):
            cut = await read_to_end(slow)
    assert len(log) == 103
    assert cut.status_code == 200
    assert cut.headers["content-type"] == "text/event-stream"
    data = [frame for frame in cut.frames if frame.data is not None]
    # The gateway either told the client why (when it read again within the write timeout) or dropped
    # the connection (when it did not); either way before the task's last event.
    if cut.complete:
        assert cut.frames == [*data, SLOW_CONSUMER]
    else:
        assert cut.frames == data
    assert 1 <= len(data) < len(log)
    assert data == expected_frames(log[: len(data)])
    metrics = (await sse_client.get(f"{gateway.url}/metrics")).text
    cut_off = [line for line in metrics.splitlines() if line.startswith("a2a_slow_consumer")]
    reasons = ["buffer"] if cut.complete else ["buffer", "write_timeout"]
    assert cut_off in [
        [f'a2a_slow_consumer_disconnects_total{{reason="{reason}",view="browser"}} 1.0']
        for reason in reasons
    ]
    last_id = data[-1].id
    assert last_id is not None
    resumed = opened(
        await read_stream(
            sse_client, "GET", events_url(gateway, big["id"]), headers={"Last-Event-ID": last_id}
        )
    )
    assert resumed.complete
    assert resumed.frames == expected_frames(log[len(data) :])


async def test_streams_beyond_the_process_cap_answer_503_until_one_closes(
    one_stream_gateway: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> None:
    gateway = one_stream_gateway
    message = echo_message("hold on", chunks=2, finalState="input-required")
    task = await start_task(sse_client, gateway, message)
    url = events_url(gateway, task["id"])
    held: list[Frame] = []
    async with (
        asyncio.timeout(30),
        sse_client.stream("GET", url) as stream,
    ):
        assert stream.status_code == 200
        # Held in a name: a generator dropped after `break` would be finalized, closing the connection.
        frames = stream_frames(stream)
        async for frame in frames:
            held.append(frame)
            if frame.data is not None and frame.data["type"] == "task.completed":
                break

        browser = await sse_client.get(url)
        assert browser.status_code == 503
        assert browser.headers["retry-after"] == "1"
        assert browser.headers["content-type"] == "application/json"
        assert browser.json() == {"jsonrpc": "2.0", "id": None, "error": BUSY}

        resubscribe = await sse_client.post(
            gateway.url, json=rpc_body("tasks/resubscribe", {"id": task["id"]}, "r-1")
        )
        assert resubscribe.status_code == 503
        assert resubscribe.headers["retry-after"] == "1"
        assert resubscribe.headers["content-type"] == "application/json"
        assert resubscribe.json() == {"jsonrpc": "2.0", "id": "r-1", "error": BUSY}

    log = await log_entries(redis, task["id"])
    assert log[-1][1]["task"]["status"]["state"] == "input-required"
    assert held == expected_frames(log)

    async def stream_again() -> SSEResponse:
        again = await read_stream(sse_client, "GET", url, limit=len(log))
        if again.status_code == 503:
            assert again.frames == [Frame(None, {"jsonrpc": "2.0", "id": None, "error": BUSY})]
        return again

    # The gateway frees the place once it notices the disconnect; until then it is still busy.
    again = await eventually(
        stream_again,
        10,
        what="the process's one stream place to be given back",
        until=lambda response: response.status_code != 503,
    )
    assert opened(again).frames == expected_frames(log)


async def test_streams_answer_503_while_redis_is_unreachable(
    launch_gateway: LaunchGateway, sse_client: httpx.AsyncClient
) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port('127.0.0.1')}/0"
    with launch_gateway(
        "dead-redis", {"A2A_GATEWAY_CALL_TIMEOUT_SECONDS": "0.5"}, redis_url=dead_redis
    ) as gateway:
        response = await sse_client.get(f"{gateway.url}/tasks/some-task/events")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {
            "code": -32603,
            "message": "Internal error: the task event log (Redis) is unavailable; retry shortly",
        },
    }
