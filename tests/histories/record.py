"""Records task workflow histories for the replay test: `python -m tests.histories.record [DIR]`.

Runs each scenario below through a real stack (a Temporal dev server and a Redis on free loopback
ports, an in-process echo worker, the gateway app) and writes each workflow's history as JSON. Run it
at a commit whose workflows must keep replaying, before a change of history shape, and commit what it
writes: `tests/unit/test_replay.py` replays every file with the current workflow code.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter

from gateway.app import create_app
from gateway.devstack.processes import (
    free_port,
    register_search_attributes,
    start_redis,
    start_temporal,
)
from gateway.settings import GatewaySettings
from workers import WorkerSettings, create_worker

HOST = "127.0.0.1"
HERE = Path(__file__).parent
QUEUE = "record-echo"

Call = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


def message(text: str, task_id: str | None = None, **echo: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "role": "user",
        "parts": [{"kind": "text", "text": text}],
        "messageId": str(uuid.uuid4()),
    }
    if task_id:
        body["taskId"] = task_id
    if echo:
        body["metadata"] = {"echo": echo}
    return body


async def completed(call: Call) -> list[str]:
    reply = await call("message/send", {"message": message("hello")})
    return [reply["result"]["id"]]


async def streamed_chunks(call: Call) -> list[str]:
    reply = await call(
        "message/send",
        {"message": message("one two three four", chunks=4, delay=0.2)},
    )
    return [reply["result"]["id"]]


async def blocking_long_turn(call: Call) -> list[str]:
    """A blocking send whose turn is not quick: asked as a local activity, run as an activity."""
    reply = await call("message/send", {"message": message("one two three", chunks=3, delay=0.8)})
    return [reply["result"]["id"]]


async def input_required_then_completed(call: Call) -> list[str]:
    first = await call("message/send", {"message": message("first", finalState="input-required")})
    task_id = first["result"]["id"]
    await call("message/send", {"message": message("second", task_id)})
    return [task_id]


async def failed(call: Call) -> list[str]:
    reply = await call("message/send", {"message": message("boom", failOnTurn=1)})
    return [reply["result"]["id"]]


async def canceled_mid_turn(call: Call) -> list[str]:
    params = {"message": message("slow " * 5, chunks=5, delay=1.0), "configuration": {}}
    params["configuration"]["blocking"] = False
    reply = await call("message/send", params)
    task_id = reply["result"]["id"]
    await asyncio.sleep(1.5)
    await call("tasks/cancel", {"id": task_id})
    return [task_id]


async def canceled_while_input_required(call: Call) -> list[str]:
    reply = await call("message/send", {"message": message("ask", finalState="input-required")})
    task_id = reply["result"]["id"]
    await call("tasks/cancel", {"id": task_id})
    return [task_id]


async def operator_cancel(call: Call, client: Client) -> list[str]:
    params = {"message": message("slow " * 5, chunks=5, delay=1.0), "configuration": {}}
    params["configuration"]["blocking"] = False
    reply = await call("message/send", params)
    task_id = reply["result"]["id"]
    await asyncio.sleep(1.5)
    handle = client.get_workflow_handle(task_id)
    await handle.cancel()
    with contextlib.suppress(Exception):
        await handle.result()
    return [task_id]


async def pushed(call: Call, webhook: str) -> list[str]:
    config = {"url": webhook, "token": "t"}
    params = {
        "message": message("push me", finalState="input-required"),
        "configuration": {"pushNotificationConfig": config},
    }
    reply = await call("message/send", params)
    task_id = reply["result"]["id"]
    await call("message/send", {"message": message("done", task_id)})
    return [task_id]


async def continued_as_new(call: Call) -> list[str]:
    first = await call("message/send", {"message": message("x" * 50, finalState="input-required")})
    task_id = first["result"]["id"]
    for turn in range(12):
        state = "input-required" if turn < 11 else "completed"
        await call("message/send", {"message": message("y" * 50, task_id, finalState=state)})
    return [task_id]


async def webhook_server() -> tuple[asyncio.Server, str]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://{HOST}:{port}/hook"


@contextlib.asynccontextmanager
async def stack(data: Path) -> AsyncIterator[tuple[Client, Call, str]]:
    temporal_port, redis_port = free_port(HOST), free_port(HOST)
    with (data / "temporal.log").open("wb") as log:
        temporal = start_temporal(host=HOST, port=temporal_port, log=log)
    redis_server = start_redis(host=HOST, port=redis_port, data_dir=data)
    address, redis_url = f"{HOST}:{temporal_port}", f"redis://{HOST}:{redis_port}/0"
    try:
        client = await Client.connect(address, data_converter=pydantic_data_converter)
        await register_search_attributes(client, "default")
        redis = Redis.from_url(redis_url)
        worker = WorkerSettings(
            agent="echo",
            task_queue=QUEUE,
            temporal_address=address,
            redis_url=redis_url,
            heartbeat_seconds=0.2,
            shutdown_grace_seconds=1,
            push_allow_http=True,
            push_allowlist=[f"{HOST}/32"],
        )
        gateway = GatewaySettings(
            temporal_address=address,
            redis_url=redis_url,
            task_queue=QUEUE,
            public_url="http://testserver/",
            push_allow_http=True,
            push_allowlist=[f"{HOST}/32"],
            workflow_history_max_bytes=16 * 1024,
        )
        server, webhook = await webhook_server()
        app = create_app(gateway)
        async with (
            create_worker(client, redis, worker),
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=60
            ) as http,
        ):

            async def call(method: str, params: dict[str, Any]) -> dict[str, Any]:
                body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
                reply: dict[str, Any] = (await http.post("/", json=body)).json()
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply

            yield client, call, webhook
        server.close()
        await redis.aclose()
    finally:
        redis_server.stop()
        temporal.stop()


async def record(out: Path) -> None:
    with tempfile.TemporaryDirectory() as data:
        async with stack(Path(data)) as (client, call, webhook):
            scenarios: dict[str, Callable[[], Awaitable[list[str]]]] = {
                "completed": lambda: completed(call),
                "streamed_chunks": lambda: streamed_chunks(call),
                "blocking_long_turn": lambda: blocking_long_turn(call),
                "input_required_then_completed": lambda: input_required_then_completed(call),
                "failed": lambda: failed(call),
                "canceled_mid_turn": lambda: canceled_mid_turn(call),
                "canceled_while_input_required": lambda: canceled_while_input_required(call),
                "operator_cancel": lambda: operator_cancel(call, client),
                "pushed": lambda: pushed(call, webhook),
                "continued_as_new": lambda: continued_as_new(call),
            }
            for name, scenario in scenarios.items():
                for task_id in await scenario():
                    handle = client.get_workflow_handle(task_id)
                    # A task that did not succeed ends its workflow Failed (or Canceled).
                    with contextlib.suppress(WorkflowFailureError):
                        await handle.result()
                    # Every run of the task: a continued-as-new one has several.
                    runs = [e async for e in client.list_workflows(f"WorkflowId = '{task_id}'")]
                    for number, run in enumerate(sorted(runs, key=lambda r: r.start_time)):
                        history = await client.get_workflow_handle(
                            task_id, run_id=run.run_id
                        ).fetch_history()
                        path = out / f"{name}-{number}.json"
                        path.write_text(history.to_json())
                        print(f"{path}: {len(history.events)} events")


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / os.environ.get("A2A_HISTORIES", "v1")
    out.mkdir(parents=True, exist_ok=True)
    asyncio.run(record(out))
    os._exit(0)


if __name__ == "__main__":
    main()
