"""`a2a-gateway send` and `a2a-gateway task`, run as a user runs them (a subprocess), against a real gateway
process (Temporal, Redis, the session's echo worker), piped and in a terminal (a pty); `send` speaking
A2A 1.0 to it (its card offers 1.0) and `task list` (1.0's ListTasks); with credentials and an agent's
own endpoint on a gateway with `[auth]`; against a server built with the official a2a-sdk 0.2.12, to
show they work with any A2A v0.2.5 server (no agent-card.json: `send` falls back to 0.2.5); and against
servers that answer badly or not at all."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pytest
import uvicorn
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import (
    Part,
    TextPart,
    UnsupportedOperationError,
)
from a2a.utils import new_task
from a2a.utils.errors import ServerError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from bench.reference_server import create_app
from gateway.client.rpc import A2AClient, TransportError
from gateway.devstack.processes import free_port
from tests.a2a_schema import assert_valid
from tests.integration.conftest import AgentWorker, LaunchGateway
from tests.integration.sse import GatewayProcess, echo_message, rpc_body
from tests.waiting import eventually

HOST = "127.0.0.1"
# The CLI's own settings, which must not leak in from the environment running the tests.
CLI_VARIABLES = ("A2A_URL", "A2A_API_KEY", "A2A_API_KEY_HEADER", "A2A_TOKEN")
ECHO_PROMPT = "Echoed 11 characters. Send another message to continue."
SPINNER = re.compile(r"\r\x1b\[2K[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] working \d+\.\ds")


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLI_VARIABLES}
    return {**env, "PYTHONUNBUFFERED": "1", **(extra or {})}


async def start_cli(
    *args: str, env: Mapping[str, str] | None = None, stdin: int = subprocess.DEVNULL
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args,
        stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(env),
    )  # fmt: skip


async def cli(*args: str, env: Mapping[str, str] | None = None, stdin: bytes | None = None) -> Run:
    """The CLI's exit code and output, piped (the event loop keeps serving while it runs)."""
    process = await start_cli(
        *args, env=env, stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate(stdin)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


def echo(**options: Any) -> list[str]:
    """`--metadata` scripting the echo agent's turn."""
    return ["--metadata", json.dumps({"echo": options})]


def task_line(line: str) -> tuple[str, str]:
    """The task and context ids of the first line `send` prints."""
    match = re.fullmatch(r"task (\S+) \(context (\S+)\)", line)
    assert match, line
    return match[1], match[2]


@pytest.fixture(scope="module")
def url(gateway_a: GatewayProcess) -> str:
    return f"{gateway_a.url}/"


async def test_send_piped_prints_each_status_then_the_reply_and_exits_0(url: str) -> None:
    run = await cli("send", "hello world", "--url", url, *echo(chunks=3))
    task_id, context_id = task_line(run.lines[0])
    assert run.lines == [
        f"task {task_id} (context {context_id})",
        "submitted",
        "working",
        "hello world",
        "completed",
    ]
    assert (run.code, run.err) == (0, "")

    got = await cli("task", "get", task_id, "--url", url)
    assert got.lines == [f"task {task_id} (context {context_id})", "hello world", "completed"]
    assert (got.code, got.err) == (0, "")


async def test_send_no_stream_prints_the_finished_task(url: str) -> None:
    run = await cli("send", "--no-stream", "-", "--url", url, *echo(chunks=3), stdin=b"hello world")
    task_id, context_id = task_line(run.lines[0])
    assert run.lines == [f"task {task_id} (context {context_id})", "hello world", "completed"]
    assert (run.code, run.err) == (0, "")


@pytest.mark.parametrize(
    ("mode", "progress"), [([], ["submitted", "working"]), (["--no-stream"], [])]
)
async def test_send_of_a_failing_task_prints_why_and_exits_1(
    url: str, mode: list[str], progress: list[str]
) -> None:
    run = await cli("send", *mode, "doomed", "--url", url, *echo(failOnTurn=1))
    task_id, context_id = task_line(run.lines[0])
    assert run.lines == [
        f"task {task_id} (context {context_id})",
        *progress,
        "failed: Agent 'echo' failed: scripted failure on turn 1",
    ]
    assert (run.code, run.err) == (1, "")


async def test_send_input_required_says_how_to_reply_and_a_reply_continues_the_task(
    url: str,
) -> None:
    first = await cli("send", "hello world", "--url", url, *echo(finalState="input-required"))
    task_id, context_id = task_line(first.lines[0])
    header = f"task {task_id} (context {context_id})"
    assert first.lines == [
        header,
        "submitted",
        "working",
        "hello world",
        f"input-required: {ECHO_PROMPT}",
    ]
    assert (
        first.err
        == f'reply with: a2a-gateway send --task-id {task_id} --url {url} "<your reply>"\n'
    )
    assert first.code == 0

    # Only this turn's reply is printed, though the task's snapshot carries the first one too.
    second = await cli("send", "--task-id", task_id, "and more", "--url", url)
    assert second.lines == [header, "working", "and more", "completed"]
    assert (second.code, second.err) == (0, "")

    got = await cli("task", "get", task_id, "--history-length", "3", "--url", url)
    assert got.lines == [
        header,
        "user: hello world",
        f"agent: {ECHO_PROMPT}",
        "user: and more",
        "hello world",
        "and more",
        "completed",
    ]
    assert (got.code, got.err) == (0, "")


async def test_send_json_prints_only_the_final_task_in_the_context_given(url: str) -> None:
    context_id = str(uuid.uuid4())
    for mode in ([], ["--no-stream"]):
        run = await cli(
            "send", *mode, "--json", "hello world", "--context-id", context_id, "--url", url,
            *echo(chunks=2),
        )  # fmt: skip
        task = json.loads(run.out)
        assert_valid(task, "Task")
        assert (task["contextId"], task["status"]["state"]) == (context_id, "completed")
        assert [part["text"] for part in task["artifacts"][0]["parts"]] == ["hello ", "world"]
        assert (run.code, run.err) == (0, "")


async def test_task_canceled_while_send_streams_it_ends_send_with_1(url: str) -> None:
    text = "please cancel this long-running echo"
    send = await start_cli("send", text, "--url", url, *echo(chunks=len(text), delay=0.25))
    assert send.stdout is not None
    async with asyncio.timeout(30):
        task_id, context_id = task_line((await send.stdout.readline()).decode().rstrip("\n"))
        assert await send.stdout.readline() == b"submitted\n"
        assert await send.stdout.readline() == b"working\n"
    header = f"task {task_id} (context {context_id})"

    cancel = await cli("task", "cancel", task_id, "--url", url)
    # The canceled task keeps the part of the reply the agent wrote before the cancel reached it.
    *partial, state = cancel.lines[1:]
    assert cancel.lines[0] == header
    assert state == "canceled"
    assert partial == [] or (len(partial) == 1 and text.startswith(partial[0]))
    assert (cancel.code, cancel.err) == (0, "")

    async with asyncio.timeout(30):
        out, err = await send.communicate()
    *reply, last = out.decode().splitlines()
    # The part of the reply the agent wrote before the cancel reached it.
    assert reply == [] or (len(reply) == 1 and text.startswith(reply[0]) and reply[0] != text)
    assert (last, send.returncode, err) == ("canceled", 1, b"")

    again = await cli("task", "cancel", task_id, "--url", url)
    assert again.err == (
        f"error -32002: Task '{task_id}' is canceled; a terminal task cannot be canceled.\n"
    )
    assert (again.code, again.out) == (2, "")


async def test_task_follow_prints_a_running_task_to_the_end_of_its_turn(url: str) -> None:
    message = echo_message("hello world", chunks=3, delay=0.5)
    params = {"message": message, "configuration": {"blocking": False}}
    async with httpx.AsyncClient(timeout=30) as http:
        sent = await http.post(url, json=rpc_body("message/send", params))
    task_id = sent.json()["result"]["id"]
    context_id = sent.json()["result"]["contextId"]
    header = f"task {task_id} (context {context_id})"
    followed = await cli("task", "follow", task_id, "--url", url)
    assert followed.lines == [header, "working", "hello world", "completed"]
    assert (followed.code, followed.err) == (0, "")
    # An ended turn has nothing to follow: the task as `task get` prints it.
    again = await cli("task", "follow", task_id, "--url", url)
    assert again.lines == [header, "hello world", "completed"]
    assert (again.code, again.err) == (0, "")


async def test_task_get_of_an_unknown_task_prints_the_json_rpc_error_and_exits_2(
    url: str,
) -> None:
    run = await cli("task", "get", "no-such-task", "--url", url)
    assert (run.code, run.out, run.err) == (2, "", "error -32001: Task not found: 'no-such-task'\n")


async def sent_tasks(url: str, context_id: str) -> dict[str, tuple[str, str]]:
    """Three tasks sent one after the other in `context_id`, each ending in another state: by reply
    text, the task's id and the timestamp of its last status."""
    tasks = {}
    for text, script in (
        ("one", echo()),
        ("two", echo(finalState="input-required")),
        ("three", echo(failOnTurn=1)),
    ):
        run = await cli("send", text, "--context-id", context_id, "--url", url, *script)
        task_id, _ = task_line(run.lines[0])
        got = await cli("task", "get", task_id, "--json", "--url", url)
        tasks[text] = (task_id, json.loads(got.out)["status"]["timestamp"])
    return tasks


async def test_task_list_prints_a_contexts_tasks_newest_first_then_the_total(url: str) -> None:
    context_id = str(uuid.uuid4())
    tasks = await sent_tasks(url, context_id)

    def row(text: str, state: str, width: int) -> str:
        task_id, updated = tasks[text]
        return f"{task_id}  {state.ljust(width)}  {context_id}  {updated}"

    def header(width: int) -> str:
        return f"{'ID'.ljust(36)}  {'STATE'.ljust(width)}  {'CONTEXT'.ljust(36)}  UPDATED"

    listed = await cli("task", "list", "--context-id", context_id, "--url", url)
    assert listed.lines == [
        header(14),
        row("three", "failed", 14),
        row("two", "input-required", 14),
        row("one", "completed", 14),
        "3 tasks",
    ]
    assert (listed.code, listed.err) == (0, "")

    first = await cli("task", "list", "--context-id", context_id, "--limit", "2", "--url", url)
    *table, last = first.lines
    assert table == [header(14), row("three", "failed", 14), row("two", "input-required", 14)]
    match = re.fullmatch(r"2 of 3 tasks; next page: (a2a-gateway task list .*)", last)
    assert match, last
    token = match[1].split("--page-token ")[1].split(" ")[0]
    assert match[1] == (
        f"a2a-gateway task list --context-id {context_id} --limit 2 --page-token {token} "
        f"--url {url}"
    )
    assert (first.code, first.err) == (0, "")
    second = await cli(*match[1].split()[1:])
    assert second.lines == [header(9), row("one", "completed", 9), "1 of 3 tasks"]
    assert (second.code, second.err) == (0, "")

    for state, text, shown in (
        ("input-required", "two", "input-required"),
        ("TASK_STATE_FAILED", "three", "failed"),
        ("COMPLETED", "one", "completed"),
    ):
        only = await cli("task", "list", "--context-id", context_id, "--state", state, "--url", url)
        width = max(len(shown), len("STATE"))
        assert only.lines == [header(width), row(text, shown, width), "1 task"]
        assert (only.code, only.err) == (0, "")


async def test_task_list_with_a_bad_state_prints_the_json_rpc_error_and_exits_2(url: str) -> None:
    run = await cli("task", "list", "--state", "finished", "--url", url)
    assert (run.code, run.out) == (2, "")
    states = ", ".join(
        f"TASK_STATE_{state}"
        for state in (
            "SUBMITTED", "WORKING", "INPUT_REQUIRED", "COMPLETED", "CANCELED", "FAILED", "REJECTED",
            "AUTH_REQUIRED",
        )
    )  # fmt: skip
    violation = {
        "field": "status",
        "description": f"unknown state 'TASK_STATE_FINISHED'; one of {states}",
    }
    bad_request = {
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [violation],
    }
    assert run.err == (
        "error -32602: Invalid parameters for ListTasks\n"
        f"data: {orjson.dumps([bad_request]).decode()}\n"
    )

    # A page size out of range is refused before any request.
    usage = await cli("task", "list", "--limit", "101", "--url", url)
    assert (usage.code, usage.out) == (2, "")
    assert usage.err.endswith(
        "a2a-gateway task list: error: argument --limit: must be 1 to 100, got 101\n"
    )


async def request_counts(http: httpx.AsyncClient, url: str) -> dict[str, float]:
    """The gateway's count of answered requests (`a2a_requests_total{code="ok"}`), by method."""
    response = await http.get(f"{url}metrics")
    counts = {}
    for line in response.text.splitlines():
        match = re.fullmatch(r'a2a_requests_total\{code="ok",method="([^"]+)"\} (\S+)', line)
        if match:
            counts[match[1]] = float(match[2])
    return counts


async def test_send_speaks_a2a_1_0_to_a_server_whose_card_offers_it(url: str) -> None:
    methods = ("SendStreamingMessage", "SendMessage", "message/stream", "message/send")
    async with httpx.AsyncClient() as http:
        card = (await http.get(f"{url}.well-known/agent-card.json")).json()
        assert {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"} in card[
            "supportedInterfaces"
        ]
        before = await request_counts(http, url)
        streamed = await cli("send", "hello world", "--url", url, *echo(chunks=2))
        middle = await request_counts(http, url)
        sent = await cli("send", "--no-stream", "hi", "--url", url)
        after = await request_counts(http, url)
    assert [middle.get(m, 0) - before.get(m, 0) for m in methods] == [1, 0, 0, 0]
    assert [after.get(m, 0) - middle.get(m, 0) for m in methods] == [0, 1, 0, 0]
    task_id, context_id = task_line(streamed.lines[0])
    header = f"task {task_id} (context {context_id})"
    assert streamed.lines == [header, "submitted", "working", "hello world", "completed"]
    assert (streamed.code, streamed.err) == (0, "")
    assert sent.lines[1:] == ["hi", "completed"]
    assert (sent.code, sent.err) == (0, "")


async def test_send_to_an_unknown_agent_prints_the_error_with_its_http_status(url: str) -> None:
    run = await cli("send", "hi", "--url", url, "--agent", "nobody")
    assert (run.code, run.out) == (2, "")
    assert run.err == (
        "error -32601: No agent named 'nobody' at this gateway; its agents: echo (HTTP 404)\n"
    )


async def test_unreachable_server_or_no_json_rpc_answer_exits_3(gateway_a: GatewayProcess) -> None:
    closed = f"http://{HOST}:{free_port(HOST)}/"
    for command in (["send", "hi"], ["task", "cancel", "t1"]):
        run = await cli(*command, "--url", closed)
        assert (run.code, run.out) == (3, "")
        assert run.err == f"cannot connect to {closed}: Connection refused\n"

    health = f"{gateway_a.url}/healthz"
    run = await cli("task", "get", "t1", "--url", health)
    assert (run.code, run.out) == (3, "")
    assert run.err == f"HTTP 405 Method Not Allowed from {health}: Method Not Allowed\n"


def _read_all(fd: int) -> bytes:
    data = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the terminal's other end is closed
            return data
        if not chunk:
            return data
        data += chunk


def screen_lines(raw: str) -> list[str]:
    """The lines a terminal shows: what follows the last line-clear on each line."""
    return [line.rsplit("\x1b[2K", 1)[-1] for line in raw.split("\r\n")]


async def test_send_in_a_terminal_streams_the_reply_under_a_progress_line(url: str) -> None:
    controller, terminal = os.openpty()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "send", "aaaa\nbbbb\ncccc\n", "--url", url,
            *echo(chunks=3, delay=0.5),
            stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal,
            env=cli_env({"TERM": "xterm"}),
        )  # fmt: skip
    finally:
        os.close(terminal)
    try:
        async with asyncio.timeout(60):
            raw = (await asyncio.to_thread(_read_all, controller)).decode()
            assert await process.wait() == 0
    finally:
        os.close(controller)
    # While the agent waits between its lines, a spinner counts the seconds on the empty line below.
    assert SPINNER.search(raw.split("aaaa\r\n", 1)[1].split("bbbb")[0]), raw
    task_id, context_id = task_line(screen_lines(raw)[0])
    assert screen_lines(raw) == [
        f"task {task_id} (context {context_id})",
        "submitted",
        "working",
        "aaaa",
        "bbbb",
        "cccc",
        "completed",
        "",
    ]


ALICE_KEY = "cli-alice-key-0b7e"
SECRET_ENV = "A2A_TEST_CLI_JWT_SECRET"
SECRET = "cli-integration-test-hs256-secret-0123456789"


@pytest.fixture(scope="module")
def agents_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    suffix = uuid.uuid4().hex[:8]
    path = tmp_path_factory.mktemp("cli") / "agents.toml"
    path.write_text(
        f"""
default = "echo"

[agents.echo]
kind = "echo"
task_queue = "test-cli-echo-{suffix}"

[agents.shout]
kind = "echo"
task_queue = "test-cli-shout-{suffix}"
options = {{ chunks = 2 }}

[auth]
api_key_header = "X-Key"
[auth.api_keys.alice]
key_sha256 = "{hashlib.sha256(ALICE_KEY.encode()).hexdigest()}"
[auth.jwt]
secret_env = "{SECRET_ENV}"
audience = "a2a-cli-test"
issuer = "https://issuer.test"
"""
    )
    return path


@pytest.fixture(scope="module")
async def auth_url(
    launch_gateway: LaunchGateway, agent_worker: AgentWorker, agents_file: Path
) -> AsyncIterator[str]:
    env = {"A2A_CONFIG": str(agents_file), SECRET_ENV: SECRET}
    with launch_gateway("cli-auth", env) as gateway:
        async with agent_worker(agents_file, "shout"):
            yield f"{gateway.url}/"


async def test_credentials_and_agent_endpoint_on_a_gateway_with_auth(auth_url: str) -> None:
    refused = await cli("send", "hi", "--url", auth_url, "--agent", "shout")
    assert (refused.code, refused.out) == (2, "")
    assert refused.err == (
        "error -32010: Authentication required: send an API key in the X-Key header or a "
        "Bearer token (HTTP 401)\n"
    )

    key = ["--api-key", ALICE_KEY, "--api-key-header", "X-Key"]
    run = await cli("send", "hi there", "--url", auth_url, "--agent", "shout", *key)
    task_id, context_id = task_line(run.lines[0])
    header = f"task {task_id} (context {context_id})"
    assert run.lines == [header, "submitted", "working", "hi there", "completed"]
    assert (run.code, run.err) == (0, "")

    # From the environment: the URL and a Bearer token (another principal: the task is not its own).
    token = jwt.encode(
        {
            "sub": "carol",
            "aud": "a2a-cli-test",
            "iss": "https://issuer.test",
            "exp": int(time.time()) + 3600,
        },
        SECRET,
        algorithm="HS256",
    )
    env = {"A2A_URL": auth_url, "A2A_TOKEN": token}
    other = await cli("task", "get", task_id, "--agent", "shout", env=env)
    assert (other.code, other.err) == (2, f"error -32001: Task not found: '{task_id}'\n")
    env = {"A2A_URL": auth_url, "A2A_API_KEY": ALICE_KEY, "A2A_API_KEY_HEADER": "X-Key"}
    own = await cli("task", "get", task_id, "--agent", "shout", env=env)
    assert own.lines == [header, "hi there", "completed"]
    assert (own.code, own.err) == (0, "")


class Greeter(AgentExecutor):
    """A trivial a2a-sdk agent: replies "Hello, <text>" as an artifact streamed in two chunks."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None
        task = context.current_task or new_task(context.message)
        if context.current_task is None:
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.contextId)
        await updater.start_work()
        for index, piece in enumerate(("Hello, ", context.get_user_input())):
            await updater.add_artifact(
                [Part(root=TextPart(text=piece))],
                artifact_id="greeting",
                name="greeting",
                append=index > 0,
                last_chunk=index == 1,
            )
            await asyncio.sleep(0.05)
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise ServerError(error=UnsupportedOperationError())


@contextlib.asynccontextmanager
async def sdk_server(*, streaming: bool) -> AsyncIterator[str]:
    """An a2a-sdk 0.2.12 server (A2AStarletteApplication) on a free loopback port, in this loop."""
    port = free_port(HOST)
    url = f"http://{HOST}:{port}/"
    app = create_app(url, Greeter(), streaming=streaming)
    async with serving(app, port):
        yield url


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, port: int) -> AsyncIterator[None]:
    """`app` under uvicorn on `port` of the loopback address, in this loop."""
    server = uvicorn.Server(
        uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, 30, what="uvicorn to start", interval=0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def test_cli_works_against_an_a2a_sdk_server() -> None:
    async with sdk_server(streaming=True) as url:
        run = await cli("send", "world", "--url", url)
        task_id, context_id = task_line(run.lines[0])
        header = f"task {task_id} (context {context_id})"
        assert run.lines == [header, "submitted", "working", "Hello, world", "completed"]
        assert (run.code, run.err) == (0, "")

        sent = await cli("send", "--no-stream", "you", "--url", url)
        assert sent.lines[1:] == ["Hello, you", "completed"]
        assert (sent.code, sent.err) == (0, "")

        got = await cli("task", "get", task_id, "--url", url)
        assert got.lines == [header, "Hello, world", "completed"]
        assert (got.code, got.err) == (0, "")

        missing = await cli("task", "get", "no-such-task", "--url", url)
        assert (missing.code, missing.out, missing.err) == (2, "", "error -32001: Task not found\n")


async def test_cli_sends_without_streaming_to_an_agent_whose_card_says_it_does_not_stream() -> None:
    async with sdk_server(streaming=False) as url:
        run = await cli("send", "world", "--url", url)
        task_id, context_id = task_line(run.lines[0])
        # No "submitted" and "working": message/send answers with the finished task only.
        assert run.lines == [f"task {task_id} (context {context_id})", "Hello, world", "completed"]
        assert (run.code, run.err) == (0, "")


async def test_an_invalid_url_exits_2_naming_it_and_where_it_came_from() -> None:
    runs = [
        await cli("send", "hi", "--url", "http://[::1"),
        await cli("task", "get", "t1", "--url", "http://localhost:99999/"),
        await cli("task", "cancel", "t1", env={"A2A_URL": "ftp://x"}),
    ]
    assert [(run.code, run.out, run.err) for run in runs] == [
        (2, "", "a2a-gateway send: invalid --url 'http://[::1': Invalid IPv6 URL\n"),
        (
            2,
            "",
            "a2a-gateway task get: invalid --url 'http://localhost:99999/': port 99999 is not "
            "in 1-65535\n",
        ),
        (
            2,
            "",
            "a2a-gateway task cancel: invalid A2A_URL 'ftp://x': the scheme must be http or "
            "https\n",
        ),
    ]


@contextlib.asynccontextmanager
async def scripted_server(answers: Mapping[str, Any]) -> AsyncIterator[str]:
    """A JSON-RPC endpoint on a free loopback port that answers each method with the body `answers`
    has for it, its `id` set to the request's; no agent card. Its URL."""

    async def rpc(request: Request) -> Response:
        call = orjson.loads(await request.body())
        body = {"jsonrpc": "2.0", "id": call["id"], **answers[call["method"]]}
        return Response(orjson.dumps(body), media_type="application/json")

    port = free_port(HOST)
    async with serving(Starlette(routes=[Route("/", rpc, methods=["POST"])]), port):
        yield f"http://{HOST}:{port}/"


def task_result(**fields: Any) -> dict[str, Any]:
    task = {"id": "t1", "contextId": "c1", "status": {"state": "completed"}, "kind": "task"}
    return {"result": {**task, **fields}}


async def test_an_answer_that_is_not_a2a_exits_3_naming_the_server() -> None:
    answers = {
        # An id the reply command would quote, a status `task get` would read.
        "message/stream": task_result(id=5, status={"state": "input-required"}),
        "message/send": task_result(artifacts="none"),
        "tasks/get": task_result(status="done"),
        "tasks/cancel": {"result": ["t1"]},
    }
    async with scripted_server(answers) as url:
        runs = [
            await cli("send", "hi", "--url", url),
            await cli("send", "--no-stream", "hi", "--url", url),
            await cli("task", "get", "t1", "--url", url),
            await cli("task", "cancel", "t1", "--url", url),
        ]
    reasons = [
        "message/stream returned a task whose id is 5, not a string",
        'message/send returned a task whose artifacts is "none", not an array',
        'tasks/get returned a task whose status is "done", not an object',
        'tasks/cancel returned ["t1"], not a task',
    ]
    assert [(run.code, run.out, run.err) for run in runs] == [
        (3, "", f"not an A2A answer from {url}: {reason}\n") for reason in reasons
    ]


async def test_control_characters_from_the_server_never_reach_the_output() -> None:
    message = {
        "role": "agent",
        "parts": [{"kind": "text", "text": "done\x1b]52;c;ZXZpbA==\x07"}],
        "messageId": "m1",
        "kind": "message",
    }
    reply = {"artifactId": "a1", "parts": [{"kind": "text", "text": "hi\x1b[2J there\x9b1A\r\n"}]}
    task = task_result(
        contextId="c1\x1b]0;title\x07",
        status={"state": "completed", "message": message},
        artifacts=[reply],
    )
    error = {"code": -32002, "message": "no\x1b[31m", "data": {"why": "\x9b\x1b"}}
    answers = {"message/stream": task, "tasks/get": task, "tasks/cancel": {"error": error}}
    lines = ["task t1 (context c1]0;title)", "hi[2J there1A", "completed: done]52;c;ZXZpbA=="]
    async with scripted_server(answers) as url:
        sent = await cli("send", "hi", "--url", url)
        got = await cli("task", "get", "t1", "--url", url)
        as_json = await cli("task", "get", "t1", "--json", "--url", url)
        refused = await cli("task", "cancel", "t1", "--url", url)
    assert (sent.code, sent.lines, sent.err) == (0, lines, "")
    assert (got.code, got.lines, got.err) == (0, lines, "")
    assert as_json.code == 0
    assert json.loads(as_json.out) == task["result"]
    assert re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", as_json.out) is None
    assert (refused.code, refused.out) == (2, "")
    assert refused.err == 'error -32002: no[31m\ndata: {"why":"\\u009b\\u001b"}\n'


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """A server on a free loopback port that takes connections and requests and never answers."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up
        writer.close()

    server = await asyncio.start_server(hold, HOST, 0)
    async with server:
        yield f"http://{HOST}:{server.sockets[0].getsockname()[1]}/"


async def test_a_server_that_never_answers_is_given_up_on_after_the_read_timeout() -> None:
    wait = httpx.Timeout(5.0, read=0.5)
    blocking = {"message": {}, "configuration": {"blocking": True}}
    async with silent_server() as url, httpx.AsyncClient() as http:
        rpc = A2AClient(http, url, call_timeout=wait, turn_timeout=wait)
        calls: list[Callable[[], Any]] = [
            rpc.agent_card,
            lambda: rpc.call("tasks/get", {"id": "t1"}),
            lambda: rpc.call("message/send", blocking),
        ]
        errors = []
        for call in calls:
            with pytest.raises(TransportError) as raised:
                await call()
            errors.append(str(raised.value))
    assert errors == [
        f"no answer from {url}.well-known/agent.json within 0.5 s",
        f"no answer from {url} within 0.5 s",
        f"no answer from {url} within 0.5 s",
    ]
