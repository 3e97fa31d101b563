"""The WebSocket feed (`/ws`) against real gateway processes, the echo worker, Temporal and Redis: many
tasks on one socket, each event with its task id and its Redis log entry id, replay after an id,
unsubscribe, the errors of bad messages, ping/pong, and the browser stream's auth, tenancy and stream
caps."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from gateway.app import create_app
from gateway.devstack.processes import free_port
from gateway.settings import GatewaySettings
from gateway.streaming.ws import MAX_MESSAGE_BYTES, MAX_PING_DATA_BYTES
from tests.integration.agents_files import echo_behind_api_keys
from tests.integration.conftest import LaunchGateway
from tests.integration.eventlog import count, log_entries, read_until
from tests.integration.sse import GatewayProcess, echo_message, rpc_body
from tests.integration.test_browser_stream import browser_data, finished_log, start_task
from tests.waiting import eventually

ALICE_KEY = "ws-alice-key-0c41d7"
BOB_KEY = "ws-bob-key-93be20"
ALICE = {"X-API-Key": ALICE_KEY}
BOB = {"X-API-Key": BOB_KEY}
STREAM_CAP = (
    "Rate limit exceeded: 2 concurrent streams per caller on this gateway process; close one first"
)
# Long enough for any frame the gateway owes us; short enough to fail fast.
FRAME_DEADLINE = 15


def ws_url(gateway: GatewayProcess, query: str = "") -> str:
    return gateway.url.replace("http://", "ws://", 1) + "/ws" + (f"?{query}" if query else "")


@contextlib.asynccontextmanager
async def feed(
    gateway: GatewayProcess, query: str = "", headers: dict[str, str] | None = None
) -> AsyncIterator[ClientConnection]:
    async with connect(ws_url(gateway, query), additional_headers=headers) as ws:
        yield ws


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(orjson.dumps(message).decode())


async def receive(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(FRAME_DEADLINE):
        frame = await ws.recv()
    assert isinstance(frame, str), "the feed sends text frames"
    message: dict[str, Any] = orjson.loads(frame)
    return message


async def receive_until_ended(ws: ClientConnection, task_ids: set[str]) -> list[dict[str, Any]]:
    """Frames until every task of `task_ids` has had its `end`."""
    frames = []
    ended: set[str] = set()
    while ended != task_ids:
        frame = await receive(ws)
        frames.append(frame)
        if frame["type"] == "end":
            ended.add(frame["taskId"])
    return frames


async def nothing_more(ws: ClientConnection) -> None:
    """The next frame answers a ping sent now: nothing else was on its way."""
    token = uuid.uuid4().hex
    await send(ws, {"type": "ping", "data": token})
    assert await receive(ws) == {"type": "pong", "data": token}


async def until_closed(ws: ClientConnection) -> tuple[list[dict[str, Any]], ConnectionClosed]:
    """The frames until the server closes the socket, and how it closed it."""
    frames = []
    try:
        while True:
            frames.append(await receive(ws))
    except ConnectionClosed as closed:
        return frames, closed


def event_frames(task_id: str, entries: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [
        {"type": "event", "taskId": task_id, "id": entry_id, "event": browser_data(event)}
        for entry_id, event in entries
    ]


def subscription(task_id: str, entries: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """What a subscription that runs to the task's end receives, in order."""
    return [
        {"type": "subscribed", "taskId": task_id},
        *event_frames(task_id, entries),
        {"type": "end", "taskId": task_id},
    ]


def error(task_id: str | None, code: int, message: str, data: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        body["data"] = data
    return {"type": "error", "taskId": task_id, "error": body}


async def metric(client: httpx.AsyncClient, gateway: GatewayProcess, series: str) -> float:
    """The value of one series of the gateway's /metrics (0 when it has none yet)."""
    text = (await client.get(f"{gateway.url}/metrics")).text
    for line in text.splitlines():
        if line.startswith(f"{series} "):
            return float(line.split()[-1])
    return 0.0


async def ws_streams_open(client: httpx.AsyncClient, gateway: GatewayProcess) -> float:
    """The gateway's `a2a_active_streams{view="ws"}`."""
    return await metric(client, gateway, 'a2a_active_streams{view="ws"}')


async def settled_streams(client: httpx.AsyncClient, gateway: GatewayProcess) -> float:
    """`ws_streams_open` once it reads 0, within 5 s (the gateway sees a client leave a bit later)."""
    return await eventually(
        lambda: ws_streams_open(client, gateway),
        5,
        what="the gateway's WebSocket streams to close",
        until=lambda value: value == 0,
    )


# --- 1. Many tasks on one socket -----------------------------------------------------------------


async def test_ws_two_tasks_on_one_socket_interleave_each_in_log_order_with_log_ids(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> None:
    first = await start_task(
        sse_client, gateway_a, echo_message("alpha bravo charlie delta", chunks=8, delay=0.15)
    )
    second = await start_task(
        sse_client, gateway_a, echo_message("one two three four five", chunks=8, delay=0.15)
    )
    ids = {first["id"], second["id"]}
    async with feed(gateway_a) as ws:
        for task_id in (first["id"], second["id"]):
            await send(ws, {"type": "subscribe", "taskId": task_id})
        frames = await receive_until_ended(ws, ids)
        await nothing_more(ws)
        # Ended subscriptions hold no stream.
        assert await ws_streams_open(sse_client, gateway_a) == 0

    logs = {task_id: await finished_log(redis, task_id) for task_id in ids}
    for task_id in ids:
        assert len(logs[task_id]) == 11  # created, working, 8 chunks, completed
        mine = [frame for frame in frames if frame["taskId"] == task_id]
        assert mine == subscription(task_id, logs[task_id])
    assert len(frames) == sum(len(log) + 2 for log in logs.values())
    # Both tasks were live at once: their events interleave on the socket.
    order = [frame["taskId"] for frame in frames if frame["type"] == "event"]
    switches = sum(a != b for a, b in itertools.pairwise(order))
    assert switches >= 3, order


# --- 2. Replay -----------------------------------------------------------------------------------


async def test_ws_replay_after_an_id_gives_exactly_the_later_entries_then_end(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> None:
    task = await start_task(sse_client, gateway_a, echo_message("replay me please", chunks=4))
    task_id = task["id"]
    log = await finished_log(redis, task_id)
    assert len(log) == 7  # created, working, 4 chunks, completed
    async with feed(gateway_a) as ws:
        await send(ws, {"type": "subscribe", "taskId": task_id, "after": log[2][0]})
        assert await receive_until_ended(ws, {task_id}) == subscription(task_id, log[3:])

        # Without `after`: the whole log, as the browser stream without Last-Event-ID.
        await send(ws, {"type": "subscribe", "taskId": task_id, "after": None})
        assert await receive_until_ended(ws, {task_id}) == subscription(task_id, log)

        # After the last entry of a finished task: nothing to replay, and the task is over.
        await send(ws, {"type": "subscribe", "taskId": task_id, "after": log[-1][0]})
        assert await receive_until_ended(ws, {task_id}) == subscription(task_id, [])
        await nothing_more(ws)


async def test_ws_subscribe_again_replaces_the_subscription(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> None:
    task = await start_task(sse_client, gateway_a, echo_message("x" * 30, chunks=30, delay=0.1))
    task_id = task["id"]
    async with feed(gateway_a) as ws:
        await send(ws, {"type": "subscribe", "taskId": task_id})
        assert await receive(ws) == {"type": "subscribed", "taskId": task_id}
        early = [await receive(ws) for _ in range(2)]
        # Replay from the first event again, on the same socket.
        await send(ws, {"type": "subscribe", "taskId": task_id, "after": early[0]["id"]})
        # Events of the first subscription already on their way come first.
        while (frame := await receive(ws)) != {"type": "subscribed", "taskId": task_id}:
            early.append(frame)
        frames = await receive_until_ended(ws, {task_id})
        assert await ws_streams_open(sse_client, gateway_a) == 0
    log = await finished_log(redis, task_id)
    assert early == event_frames(task_id, log[: len(early)])
    assert frames == [*event_frames(task_id, log[1:]), {"type": "end", "taskId": task_id}]


# --- 3. Unsubscribe ------------------------------------------------------------------------------


async def test_ws_unsubscribe_stops_the_events_while_the_task_goes_on(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> None:
    task = await start_task(sse_client, gateway_a, echo_message("y" * 40, chunks=40, delay=0.1))
    task_id = task["id"]
    async with feed(gateway_a) as ws:
        await send(ws, {"type": "subscribe", "taskId": task_id})
        assert await receive(ws) == {"type": "subscribed", "taskId": task_id}
        received = [await receive(ws) for _ in range(4)]
        await send(ws, {"type": "unsubscribe", "taskId": task_id})
        # Events already on their way come first; none after the answer.
        while (frame := await receive(ws)) != {"type": "unsubscribed", "taskId": task_id}:
            received.append(frame)
        assert await ws_streams_open(sse_client, gateway_a) == 0
        # The task goes on: 5 more chunks reach its log, none this socket.
        await read_until(redis, task_id, count("task.progress", len(received) + 5))
        await nothing_more(ws)

        # Unsubscribing from a task not subscribed (any more) is answered the same.
        await send(ws, {"type": "unsubscribe", "taskId": task_id})
        assert await receive(ws) == {"type": "unsubscribed", "taskId": task_id}
    log = await log_entries(redis, task_id)
    assert len(log) > len(received) + 5
    assert received == event_frames(task_id, log[: len(received)])


# --- 4. Bad messages, unknown tasks, ping --------------------------------------------------------


def json_error(text: bytes) -> str:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError as err:
        return f"Invalid JSON payload: {err}"
    raise AssertionError(f"{text!r} is JSON")


async def test_ws_errors_and_pings_are_answered_and_the_socket_stays_usable(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> None:
    unknown = str(uuid.uuid4())
    task = await start_task(sse_client, gateway_a, echo_message("still works"))
    log = await finished_log(redis, task["id"])
    async with feed(gateway_a) as ws:
        exchanges: list[tuple[str | dict[str, Any], dict[str, Any]]] = [
            (
                {"type": "subscribe", "taskId": unknown},
                error(unknown, -32001, f"Task not found: '{unknown}'"),
            ),
            (
                {"type": "subscribe", "taskId": task["id"], "after": "banana"},
                error(
                    task["id"],
                    -32602,
                    "Invalid parameters: after must be an event id this feed sent "
                    "(like 1700000000000-0), got 'banana'",
                ),
            ),
            (
                {"type": "subscribe", "taskId": task["id"], "after": 17},
                error(task["id"], -32602, "Invalid parameters: after must be a string, got 17"),
            ),
            (
                {"type": "subscribe"},
                error(
                    None,
                    -32602,
                    "Invalid parameters: subscribe needs a taskId (a non-empty string)",
                ),
            ),
            (
                {"type": "unsubscribe", "taskId": ""},
                error(
                    None,
                    -32602,
                    "Invalid parameters: unsubscribe needs a taskId (a non-empty string)",
                ),
            ),
            ("not json", error(None, -32700, json_error(b"not json"))),
            (
                '["subscribe"]',
                error(
                    None,
                    -32600,
                    "Request payload validation error: a message is a JSON object with a string "
                    '"type"',
                ),
            ),
            (
                {"type": "tasks/get", "taskId": task["id"]},
                error(
                    task["id"],
                    -32601,
                    "Method not found: no message type 'tasks/get' "
                    "(this feed takes subscribe, unsubscribe, ping)",
                ),
            ),
            (
                {"type": "ping", "data": {"seq": 7, "sent": [1, "two"]}},
                {"type": "pong", "data": {"seq": 7, "sent": [1, "two"]}},
            ),
            ({"type": "ping"}, {"type": "pong"}),
            ({"type": "ping", "data": None}, {"type": "pong", "data": None}),
        ]
        for message, answer in exchanges:
            if isinstance(message, str):
                await ws.send(message)
            else:
                await send(ws, message)
            assert await receive(ws) == answer, message
        # A binary frame is read as JSON too.
        await ws.send(b'{"type":"ping","data":"bytes"}')
        assert await receive(ws) == {"type": "pong", "data": "bytes"}
        # After all that, the socket still serves subscriptions.
        await send(ws, {"type": "subscribe", "taskId": task["id"]})
        assert await receive_until_ended(ws, {task["id"]}) == subscription(task["id"], log)


async def test_ws_long_values_are_quoted_cut_short_in_errors(gateway_a: GatewayProcess) -> None:
    cut = "'" + "t" * 62 + "…"
    async with feed(gateway_a) as ws:
        await send(ws, {"type": "t" * 1000})
        assert await receive(ws) == error(
            None,
            -32601,
            f"Method not found: no message type {cut} (this feed takes subscribe, unsubscribe, "
            "ping)",
        )
        await send(ws, {"type": "subscribe", "taskId": "t1", "after": "t" * 1000})
        assert await receive(ws) == error(
            "t1",
            -32602,
            "Invalid parameters: after must be an event id this feed sent (like 1700000000000-0), "
            f"got {cut}",
        )
        await send(ws, {"type": "subscribe", "taskId": "t1", "after": [1] * 1000})
        assert await receive(ws) == error(
            "t1",
            -32602,
            "Invalid parameters: after must be a string, got [" + "1, " * 20 + "1,…",
        )
        await nothing_more(ws)


async def test_ws_ping_data_over_1_kib_is_refused_not_echoed_and_the_socket_stays_usable(
    gateway_a: GatewayProcess,
) -> None:
    largest = "x" * (MAX_PING_DATA_BYTES - 2)  # with its quotes, exactly the limit
    async with feed(gateway_a) as ws:
        await send(ws, {"type": "ping", "data": largest + "x"})
        assert await receive(ws) == error(
            None,
            -32602,
            "Invalid parameters: a ping's data is at most 1024 bytes of JSON, got 1025; it is "
            "not echoed",
        )
        await send(ws, {"type": "ping", "data": largest})
        assert await receive(ws) == {"type": "pong", "data": largest}
        await nothing_more(ws)


async def test_ws_message_over_64_kib_closes_1009_before_the_gateway_has_read_it_all(
    gateway_a: GatewayProcess,
) -> None:
    never = asyncio.Event()

    async def fragments() -> AsyncIterator[str]:
        yield '{"type": "ping", "data": "' + "x" * (MAX_MESSAGE_BYTES - 1000)
        yield "x" * 2000
        await never.wait()  # the message's end never comes: only uvicorn's limit can end this
        yield '"}'

    async with feed(gateway_a) as ws:
        sending = asyncio.create_task(ws.send(fragments()))
        frames, closed = await until_closed(ws)
        sending.cancel()
        await asyncio.wait([sending])
    assert frames == []
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1009  # message too big


@contextlib.asynccontextmanager
async def unlimited_gateway(settings: GatewaySettings) -> AsyncIterator[str]:
    """The gateway app under uvicorn with its default WebSocket message limit (16 MiB), in this
    loop: the `/ws` URL."""
    port = free_port("127.0.0.1")
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    assert config.ws_max_size > MAX_MESSAGE_BYTES
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, 30, what="uvicorn to start", interval=0.01)
    try:
        yield f"ws://127.0.0.1:{port}/ws"
    finally:
        server.should_exit = True
        await serving


async def test_ws_message_over_64_kib_closes_1009_under_a_server_without_that_limit(
    gateway_settings: GatewaySettings,
) -> None:
    # As JSON, exactly the limit: answered.
    largest = orjson.dumps({"type": "ping", "data": "x" * (MAX_MESSAGE_BYTES - 25)})
    assert len(largest) == MAX_MESSAGE_BYTES
    async with unlimited_gateway(gateway_settings) as url, connect(url) as ws:
        await ws.send(largest.decode())
        assert (await receive(ws))["error"]["code"] == -32602
        await ws.send(largest.decode().replace('"x', '"é', 1))  # one byte more in UTF-8
        frames, closed = await until_closed(ws)
    assert frames == []
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (
        1009,
        f"Message too big: at most {MAX_MESSAGE_BYTES} bytes",
    )


async def test_ws_subscription_counts_its_events_and_its_duration_in_the_metrics(
    gateway_a: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> None:
    task = await start_task(sse_client, gateway_a, echo_message("count me", chunks=2))
    log = await finished_log(redis, task["id"])
    series = [
        'a2a_events_delivered_total{view="ws"}',
        'a2a_stream_duration_seconds_count{view="ws"}',
    ]
    before = [await metric(sse_client, gateway_a, name) for name in series]
    async with feed(gateway_a) as ws:
        await send(ws, {"type": "subscribe", "taskId": task["id"]})
        assert await receive_until_ended(ws, {task["id"]}) == subscription(task["id"], log)
    after = [await metric(sse_client, gateway_a, name) for name in series]
    assert len(log) == 5  # created, working, 2 chunks, completed
    assert [b - a for a, b in zip(before, after, strict=True)] == [5, 1]


# --- 5. Auth, tenancy and the stream caps --------------------------------------------------------


@pytest.fixture(scope="module")
def auth_gateway(
    launch_gateway: LaunchGateway, tmp_path_factory: pytest.TempPathFactory, task_queue: str
) -> Iterator[GatewayProcess]:
    """A gateway that takes two API keys, with tenancy, two streams per caller, on the session's echo
    worker's queue."""
    agents = tmp_path_factory.mktemp("ws-auth") / "agents.toml"
    agents.write_text(echo_behind_api_keys(task_queue, {"alice": ALICE_KEY, "bob": BOB_KEY}))
    env = {"A2A_CONFIG": str(agents), "A2A_GATEWAY_MAX_STREAMS_PER_PRINCIPAL": "2"}
    with launch_gateway("ws-auth", env) as gateway:
        yield gateway


async def owned_task(
    client: httpx.AsyncClient, gateway: GatewayProcess, headers: dict[str, str], **echo: Any
) -> dict[str, Any]:
    params = {"message": echo_message("mine", **echo)}
    response = await client.post(
        gateway.url, json=rpc_body("message/send", params), headers=headers
    )
    assert response.status_code == 200, response.text
    task: dict[str, Any] = response.json()["result"]
    return task


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Authentication required: send an API key in the X-API-Key header"),
        ("api_key=wrong", "Invalid API key"),
    ],
)
async def test_ws_without_a_valid_credential_is_refused_401_before_the_upgrade(
    auth_gateway: GatewayProcess, query: str, message: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with feed(auth_gateway, query):
            pass
    response = refused.value.response
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'ApiKey realm="a2a", header="X-API-Key"'
    assert response.headers["content-type"] == "application/json"
    assert orjson.loads(response.body or b"") == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32010, "message": message},
    }


async def test_ws_with_a_query_key_serves_its_callers_tasks_only(
    auth_gateway: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> None:
    task = await owned_task(sse_client, auth_gateway, ALICE)
    assert task["status"]["state"] == "completed"
    log = await log_entries(redis, task["id"])
    async with feed(auth_gateway, f"api_key={ALICE_KEY}") as ws:
        await send(ws, {"type": "subscribe", "taskId": task["id"]})
        assert await receive_until_ended(ws, {task["id"]}) == subscription(task["id"], log)
    # Bob, with his key in the header, is told it does not exist.
    async with feed(auth_gateway, headers=BOB) as ws:
        await send(ws, {"type": "subscribe", "taskId": task["id"]})
        assert await receive(ws) == error(task["id"], -32001, f"Task not found: '{task['id']}'")


async def test_ws_subscriptions_hold_the_callers_streams_and_give_them_back(
    auth_gateway: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> None:
    # Tasks that wait for input: their subscriptions stay open.
    held = [
        await owned_task(sse_client, auth_gateway, ALICE, finalState="input-required")
        for _ in range(3)
    ]
    ids = [task["id"] for task in held]
    async with feed(auth_gateway, headers=ALICE) as ws:
        for task_id in ids[:2]:
            await send(ws, {"type": "subscribe", "taskId": task_id})
        frames = [await receive(ws) for _ in range(2 * 5)]
        for task_id in ids[:2]:
            log = await log_entries(redis, task_id)
            mine = [frame for frame in frames if frame["taskId"] == task_id]
            # created, working, one chunk, completed (input-required): the task is not over.
            assert len(log) == 4
            assert mine == subscription(task_id, log)[:-1]
        await send(ws, {"type": "subscribe", "taskId": ids[2]})
        assert await receive(ws) == error(ids[2], -32012, STREAM_CAP, {"retryAfter": 1})

        # An unsubscribe gives its stream back at once.
        await send(ws, {"type": "unsubscribe", "taskId": ids[0]})
        assert await receive(ws) == {"type": "unsubscribed", "taskId": ids[0]}
        await send(ws, {"type": "subscribe", "taskId": ids[2], "after": "0"})
        log = await log_entries(redis, ids[2])
        assert [await receive(ws) for _ in range(5)] == subscription(ids[2], log)[:-1]
        assert await ws_streams_open(sse_client, auth_gateway) == 2

    # A closed socket gives back all of its streams.
    assert await settled_streams(sse_client, auth_gateway) == 0
    async with feed(auth_gateway, headers=ALICE) as ws:
        for task_id in ids[:2]:
            await send(ws, {"type": "subscribe", "taskId": task_id})
        frames = [await receive(ws) for _ in range(2 * 5)]
        assert sorted(frame["type"] for frame in frames) == ["event"] * 8 + ["subscribed"] * 2
        await nothing_more(ws)


# --- 6. A client that falls behind ---------------------------------------------------------------


@pytest.fixture(scope="module")
def small_buffer_gateway(launch_gateway: LaunchGateway) -> Iterator[GatewayProcess]:
    """A gateway whose subscriptions buffer only 2 live events."""
    with launch_gateway("ws-small-buffer", {"A2A_GATEWAY_STREAM_BUFFER_EVENTS": "2"}) as gateway:
        yield gateway


# Replays of 800 kB each: more than the 4 MB a loopback connection buffers.
BIG_TASKS = 8


def slow_socket(gateway: GatewayProcess) -> socket.socket:
    """A connected TCP socket with a tiny receive buffer: once its reader stops, the gateway's writes
    back up quickly."""
    host, port = gateway.url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.setblocking(False)
    return sock


async def test_ws_client_that_falls_behind_loses_the_subscription_and_resumes_after_its_last_id(
    small_buffer_gateway: GatewayProcess, sse_client: httpx.AsyncClient, redis: Redis
) -> None:
    gateway = small_buffer_gateway
    # Finished tasks whose replays (800 kB each) overfill the connection's buffers, the kernel's
    # included, while the client does not read; then a live task of 600 events, more than the socket's
    # queue and the subscription's buffer hold.
    big = await asyncio.gather(
        *(
            start_task(sse_client, gateway, echo_message(uuid.uuid4().hex * 6250, chunks=1))
            for _ in range(BIG_TASKS)
        )
    )
    big_logs = {task["id"]: await finished_log(redis, task["id"]) for task in big}
    async with connect(
        ws_url(gateway),
        sock=slow_socket(gateway),
        compression=None,
        max_queue=1,
        max_size=None,
    ) as client:
        for task_id in big_logs:
            await send(client, {"type": "subscribe", "taskId": task_id})
        live = await start_task(sse_client, gateway, echo_message("z" * 600, chunks=600))
        live_id = live["id"]
        await send(client, {"type": "subscribe", "taskId": live_id})
        log = await finished_log(redis, live_id)
        assert len(log) == 603

        # The replays' frames and the live task's share the socket: they interleave.
        frames = []
        over: set[str] = set()
        while over != {*big_logs, live_id}:
            frames.append(frame := await receive(client))
            if frame["type"] in ("error", "end"):
                over.add(frame["taskId"])
        for task_id, big_log in big_logs.items():
            assert [f for f in frames if f["taskId"] == task_id] == subscription(task_id, big_log)
        *got, last = [f for f in frames if f["taskId"] == live_id]
        assert got[0] == {"type": "subscribed", "taskId": live_id}
        delivered = len(got) - 1
        assert delivered < len(log), "the client never fell behind"
        assert got[1:] == event_frames(live_id, log[:delivered])
        # The id of the last event delivered (none: a burst overflowed the buffer before the first).
        after = log[delivered - 1][0] if delivered else None
        assert last == error(
            live_id,
            -32013,
            f"Fell behind: this socket did not keep up with task '{live_id}'; subscribe again "
            "with after to resume",
            {"after": after},
        )

        await send(client, {"type": "subscribe", "taskId": live_id, "after": after})
        rest = await receive_until_ended(client, {live_id})
        assert rest == subscription(live_id, log[delivered:])
    metrics = (await sse_client.get(f"{gateway.url}/metrics")).text
    assert 'a2a_slow_consumer_disconnects_total{reason="buffer",view="ws"} 1.0' in metrics


# --- 7. Shutdown ---------------------------------------------------------------------------------


async def test_ws_gateway_shutdown_closes_1012_and_the_client_resumes_on_another_replica(
    launch_gateway: LaunchGateway,
    gateway_a: GatewayProcess,
    sse_client: httpx.AsyncClient,
    redis: Redis,
) -> None:
    with launch_gateway("ws-shutdown") as leaving:
        task = await start_task(sse_client, leaving, echo_message("w" * 40, chunks=40, delay=0.1))
        task_id = task["id"]
        async with feed(leaving) as ws:
            await send(ws, {"type": "subscribe", "taskId": task_id})
            assert await receive(ws) == {"type": "subscribed", "taskId": task_id}
            frames = [await receive(ws) for _ in range(3)]
            leaving.process.terminate()
            rest, closed = await until_closed(ws)
            frames += rest
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1012  # service restart
    events = [frame for frame in frames if frame["type"] == "event"]
    last = events[-1]["id"]
    # Subscriptions are told where to resume, unless the close overtook the error.
    assert frames[len(events) :] in (
        [],
        [
            error(
                task_id,
                -32603,
                "Internal error: this gateway is shutting down; subscribe again (to any replica) "
                "with after to resume",
                {"after": last},
            )
        ],
    )
    async with feed(gateway_a) as ws:
        await send(ws, {"type": "subscribe", "taskId": task_id, "after": last})
        rest = await receive_until_ended(ws, {task_id})
    log = await finished_log(redis, task_id)
    assert events == event_frames(task_id, log[: len(events)])
    assert rest == subscription(task_id, log[len(events) :])
