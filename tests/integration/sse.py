"""Real gateway processes (`a2a-gateway serve` under uvicorn on loopback) and the readers of their SSE
streams: httpx-sse for what a stream carries (`event_frames`, `read_events`), `parse_frames` for its exact
frames (`stream_frames`, `read_stream`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from httpx_sse import EventSource, ServerSentEvent, aconnect_sse

from gateway.devstack.processes import free_port
from tests.waiting import eventually_sync

HOST = "127.0.0.1"


@dataclass
class GatewayProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def gateway_process(
    log_dir: Path,
    *,
    temporal_address: str,
    redis_url: str,
    task_queue: str,
    env: Mapping[str, str] | None = None,
    name: str = "gateway",
    port: int | None = None,
) -> Iterator[GatewayProcess]:
    """`a2a-gateway serve` on `port` (else a free one), ready (its /healthz answers) when this yields;
    stopped with SIGTERM after."""
    port = port or free_port(HOST)
    log = log_dir / f"{name}-{port}.log"
    command = [os.path.join(sysconfig.get_path("scripts"), "a2a-gateway"), "serve"]
    if not os.path.exists(command[0]):
        command = [sys.executable, "-m", "gateway", "serve"]
    environment = {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_address,
        "REDIS_URL": redis_url,
        "A2A_GATEWAY_TASK_QUEUE": task_queue,
        "A2A_GATEWAY_HOST": HOST,
        "A2A_GATEWAY_PORT": str(port),
        "A2A_GATEWAY_AGENT_HEARTBEAT_TIMEOUT_SECONDS": "2",
        **(env or {}),
    }
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, env=environment, stdout=log_file, stderr=subprocess.STDOUT
        )
    url = f"http://{HOST}:{port}"
    try:
        _wait_healthy(url, process, log)
        yield GatewayProcess(url, process, log)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        return False

    eventually_sync(healthy, 30, what=f"the gateway at {url} to answer /healthz (log: {log})")


@dataclass
class Frame:
    """One SSE event as a client sees it."""

    id: str | None
    data: Any
    comments: list[str] = field(default_factory=list)


def event_frame(event: ServerSentEvent) -> Frame:
    """An event read with httpx-sse, which keeps no comments."""
    return Frame(event.id or None, orjson.loads(event.data))


def event_frames(response: httpx.Response) -> list[Frame]:
    """The events of a response whose body has been read."""
    return [event_frame(event) for event in EventSource(response).iter_sse()]


async def read_events(
    client: httpx.AsyncClient, method: str, url: str, *, json: Any = None, deadline: float = 60
) -> list[Frame]:
    """Open a stream and read its events to its end."""
    async with (
        asyncio.timeout(deadline),
        aconnect_sse(client, method, url, json=json) as source,
    ):
        return [event_frame(event) async for event in source.aiter_sse()]


def parse_frames(text: str) -> list[Frame]:
    """The frames of SSE text, each with its comment lines and its own `id:` line: the one raw parser
    beside httpx-sse, for tests of exact frames. httpx-sse drops comments, where these tests assert
    `: keep-alive` and `: closed: ...` frames, or that none came; it gives an event without `id:` the
    last id seen, where they check each event's own; and test_stream_limits reads a raw socket."""
    frames = []
    for block in text.split("\n\n"):
        if block.strip():
            frames.append(_frame(block))
    return frames


def _frame(block: str) -> Frame:
    event_id = None
    data: list[str] = []
    comments = []
    for line in block.split("\n"):
        if line.startswith(":"):
            comments.append(line[1:].strip())
        elif line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    return Frame(event_id, orjson.loads("\n".join(data)) if data else None, comments)


@dataclass
class SSEResponse:
    status_code: int
    headers: httpx.Headers
    frames: list[Frame]
    # False when the server closed the connection without ending the response cleanly.
    complete: bool = True


async def stream_frames(
    response: httpx.Response, *, limit: int | None = None
) -> AsyncIterator[Frame]:
    """Frames as they arrive (comments included, as frames without data), up to `limit` data frames."""
    buffer = ""
    seen = 0
    async for text in response.aiter_text():
        buffer += text
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            if not block.strip():
                continue
            frame = _frame(block)
            yield frame
            if frame.data is not None:
                seen += 1
                if limit is not None and seen >= limit:
                    return


async def read_stream(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    limit: int | None = None,
    deadline: float = 60,
) -> SSEResponse:
    """Open a stream and read it to its end (or to `limit` data frames, then disconnect)."""
    frames: list[Frame] = []
    async with (
        asyncio.timeout(deadline),
        client.stream(method, url, json=json, headers=headers) as response,
    ):
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            await response.aread()
            body = response.json() if response.content else None
            return SSEResponse(response.status_code, response.headers, [Frame(None, body)])
        complete = True
        try:
            async for frame in stream_frames(response, limit=limit):
                frames.append(frame)
        except httpx.RemoteProtocolError:
            complete = False
        return SSEResponse(response.status_code, response.headers, frames, complete)


def echo_message(text: str, **echo: Any) -> dict[str, Any]:
    """A user message; `echo` options script the echo agent's turn (chunks, delay, finalState)."""
    message: dict[str, Any] = {
        "role": "user",
        "parts": [{"kind": "text", "text": text}],
        "messageId": str(uuid.uuid4()),
    }
    if echo:
        message["metadata"] = {"echo": echo}
    return message


def rpc_body(method: str, params: Any, request_id: str | int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def data_frames(response: SSEResponse) -> list[Frame]:
    return [frame for frame in response.frames if frame.data is not None]
