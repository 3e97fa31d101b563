"""`a2a-gateway send` and `a2a-gateway task`: a command-line client of any A2A v0.2.5 or 1.0 server."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import shlex
import signal
import sys
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import httpx

from gateway.client.display import (
    INTERRUPTED,
    TURN_ENDS,
    UNSUCCESSFUL,
    Spinner,
    Transcript,
    json_text,
    printable,
    task_lines,
    unreadable,
)
from gateway.client.rpc import (
    CALL_TIMEOUT,
    CARD_V1_PATH,
    DEFAULT_URL,
    A2AClient,
    ClientError,
    RpcError,
    TransportError,
    check_url,
    endpoint_url,
)
from gateway.client.v1 import V1, VERSION_HEADER, V1Client, speaks_v1

OUTPUT_MODES = ["text/plain", "application/json"]
# `task follow`: how many times in a row a dropped stream is resumed, the longest pause before one.
FOLLOW_ATTEMPTS = 5
FOLLOW_PAUSE_SECONDS = 3.0
# What `send` talks to the agent through: a 0.2.5 client, or one that makes its calls in 1.0.
Client = A2AClient | V1Client


def _endpoint(args: argparse.Namespace) -> str:
    """The JSON-RPC endpoint --url (else A2A_URL, else the default) and --agent name; ValueError for
    a URL no request can go to."""
    if args.url:
        option, url = "--url", args.url
    elif os.environ.get("A2A_URL"):
        option, url = "A2A_URL", os.environ["A2A_URL"]
    else:
        option, url = "--url", DEFAULT_URL
    try:
        check_url(url)
    except ValueError as err:
        raise ValueError(f"invalid {option} {url!r}: {err}") from err
    return endpoint_url(url, args.agent)


def client_for(
    http: httpx.AsyncClient, args: argparse.Namespace, endpoint: str, *, version: str | None = None
) -> A2AClient:
    """A client of `endpoint` with the credentials given; `version`: the A2A-Version it asks for."""
    headers = {VERSION_HEADER: version} if version else {}
    api_key = args.api_key or os.environ.get("A2A_API_KEY")
    if api_key:
        header = args.api_key_header or os.environ.get("A2A_API_KEY_HEADER") or "X-API-Key"
        headers[header] = api_key
    token = args.token or os.environ.get("A2A_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return A2AClient(http, endpoint, headers=headers)


def command_line(args: argparse.Namespace, *words: str) -> str:
    """The command line that goes on with this task, with the --url and --agent given to this one."""
    command = ["a2a-gateway", *words]
    if args.url:
        command += ["--url", args.url]
    if args.agent:
        command += ["--agent", args.agent]
    return shlex.join(command)


def _say(message: str) -> None:
    """A line on stderr; what the server said in it is printed without its control characters."""
    print(printable(message), file=sys.stderr)


def check(client: Client, method: str, result: Any, *, task: bool = False) -> None:
    """TransportError (exit 3) when `result` cannot be read: a Task (with `task`, whatever it is)
    or an event with a field the CLI reads missing or of another JSON type. `method`: 0.2.5's name."""
    reason = unreadable(result, task=task)
    if reason is not None:
        name = client.wire(method) if isinstance(client, V1Client) else method
        raise TransportError(f"not an A2A answer from {client.url}: {name} returned {reason}")


def run_client(args: argparse.Namespace, command: Callable[[str], Coroutine[Any, Any, int]]) -> int:
    """`command(endpoint)` run to its exit code, with a bad --url, errors and Ctrl-C told."""
    try:
        endpoint = _endpoint(args)
    except ValueError as err:
        _say(f"{args.prog}: {err}")
        return 2
    # Like any filter: a reader that goes away (`| head`) ends the command quietly.
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    # Text the terminal or pipe cannot encode is replaced rather than fatal.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")
    try:
        return asyncio.run(command(endpoint))
    except KeyboardInterrupt:
        return 130
    except RpcError as err:
        status = f" (HTTP {err.status})" if err.status != 200 else ""
        _say(f"{err}{status}")
        if err.data is not None:
            _say(f"data: {json_text(err.data)}")
        return 2
    except TransportError as err:
        _say(str(err))
        return 3


def send(args: argparse.Namespace) -> int:
    def command(endpoint: str) -> Coroutine[Any, Any, int]:
        text = sys.stdin.read() if args.text == "-" else args.text
        return _send(args, endpoint, text)

    return run_client(args, command)


async def _send(args: argparse.Namespace, endpoint: str, text: str) -> int:
    message: dict[str, Any] = {
        "role": "user",
        "parts": [{"kind": "text", "text": text}],
        "messageId": str(uuid.uuid4()),
        "kind": "message",
    }
    for key, value in (("contextId", args.context_id), ("taskId", args.task_id)):
        if value is not None:
            message[key] = value
    if args.metadata is not None:
        message["metadata"] = args.metadata
    terminal = sys.stdout.isatty()
    spinner = Spinner(sys.stderr) if terminal and sys.stderr.isatty() else None
    async with httpx.AsyncClient(timeout=CALL_TIMEOUT) as http:
        client, streams = await _connect(http, args, endpoint)
        stream = not args.no_stream and streams
        earlier = (
            [] if stream or args.task_id is None else await _artifact_ids(client, args.task_id)
        )
        transcript = Transcript(
            sys.stdout,
            live=terminal,
            spinner=spinner,
            quiet=args.json,
            snapshot_first=stream and args.task_id is not None,
            earlier_artifacts=earlier,
        )
        params: dict[str, Any] = {
            "message": message,
            "configuration": {"acceptedOutputModes": OUTPUT_MODES},
        }
        result = await _follow(args, client, params, transcript, stream=stream)
        if args.json:
            if stream and transcript.task_id is not None:
                result = await client.call("tasks/get", {"id": transcript.task_id})
            print(json_text(result, indent=True))
    return _outcome(args, transcript, stream=stream)


async def _connect(
    http: httpx.AsyncClient, args: argparse.Namespace, endpoint: str
) -> tuple[Client, bool]:
    """The client in the A2A version the agent card offers: 1.0 when its 0.3/1.0 card
    (agent-card.json) lists a JSON-RPC 1.0 interface, else 0.2.5 (its card: agent.json); and
    whether to stream: the card says the agent streams, or there is no card."""
    client = client_for(http, args, endpoint)
    card = await client.agent_card(CARD_V1_PATH)
    if speaks_v1(card):
        return V1Client(client_for(http, args, endpoint, version=V1)), _streams(card)
    card = await client.agent_card() or card
    return client, _streams(card)


def _streams(card: dict[str, Any] | None) -> bool:
    if card is None:
        return True
    capabilities = card.get("capabilities")
    return isinstance(capabilities, dict) and capabilities.get("streaming") is True


async def _artifact_ids(client: Client, task_id: str) -> list[str]:
    """The artifacts a task has before this message, so that only the reply's are printed."""
    try:
        task = await client.call("tasks/get", {"id": task_id, "historyLength": 0})
    except ClientError:
        return []  # message/send will say what is wrong
    artifacts = task.get("artifacts") if isinstance(task, dict) else None
    if not isinstance(artifacts, list):
        return []
    return [str(a.get("artifactId")) for a in artifacts if isinstance(a, dict)]


async def _follow(
    args: argparse.Namespace,
    client: Client,
    params: dict[str, Any],
    transcript: Transcript,
    *,
    stream: bool,
) -> Any:
    """Send the message and show the task until its turn ends; the last result."""
    ticking = asyncio.create_task(_tick(transcript)) if transcript.spinner is not None else None
    result: Any = None
    try:
        if stream:
            events = client.stream("message/stream", params)
            async with contextlib.aclosing(events):
                async for result in events:
                    check(client, "message/stream", result)
                    transcript.show(result)
                    if transcript.ended:
                        break
        else:
            params["configuration"]["blocking"] = True
            result = await client.call("message/send", params)
            check(client, "message/send", result)
            transcript.show(result)
        transcript.end()
    except asyncio.CancelledError:
        transcript.close()
        if transcript.task_id is not None:
            follow = command_line(args, "task", "follow", transcript.task_id)
            _say(f"interrupted; the task goes on: {follow}")
        raise
    finally:
        if ticking is not None:
            ticking.cancel()
        transcript.close()
    return result


async def _tick(transcript: Transcript) -> None:
    while True:
        transcript.tick()
        await asyncio.sleep(0.1)


def _outcome(args: argparse.Namespace, transcript: Transcript, *, stream: bool) -> int:
    task_id = transcript.task_id
    if task_id is None and not transcript.ended:
        _say("the answer carried neither a Task nor a Message")
        return 3
    if task_id is not None and not transcript.ended:
        follow = command_line(args, "task", "follow", task_id)
        if stream:
            _say(f"the stream ended before the turn did; follow the task with: {follow}")
            return 3
        _say(f"the task is still {transcript.state}; follow it with: {follow}")
        return 0
    if task_id is not None and transcript.state in INTERRUPTED:
        reply = command_line(args, "send", "--task-id", task_id)
        _say(f'reply with: {reply} "<your reply>"')
    return 1 if transcript.state in UNSUCCESSFUL else 0


def task_follow(args: argparse.Namespace) -> int:
    return run_client(args, lambda endpoint: _task_follow(args, endpoint))


async def _task_follow(args: argparse.Namespace, endpoint: str) -> int:
    terminal = sys.stdout.isatty()
    spinner = Spinner(sys.stderr) if terminal and sys.stderr.isatty() else None
    async with httpx.AsyncClient(timeout=CALL_TIMEOUT) as http:
        client, _ = await _connect(http, args, endpoint)
        task = await client.call("tasks/get", {"id": args.id})
        check(client, "tasks/get", task, task=True)
        if task["status"].get("state") in TURN_ENDS:
            # Its turn is over: nothing to follow (a 1.0 server refuses to stream an ended task).
            return _print_task(args, task, "tasks/get", history=False)
        transcript = Transcript(sys.stdout, live=terminal, spinner=spinner, quiet=args.json)
        ticking = asyncio.create_task(_tick(transcript)) if spinner is not None else None
        try:
            await _resubscribe(client, args.id, transcript)
            transcript.end()
        finally:
            if ticking is not None:
                ticking.cancel()
            transcript.close()
        if args.json:
            print(json_text(await client.call("tasks/get", {"id": args.id}), indent=True))
    return _outcome(args, transcript, stream=True)


async def _resubscribe(client: Client, task_id: str, transcript: Transcript) -> None:
    """Show the task's events (tasks/resubscribe) to the end of its turn; a stream that drops is
    resumed after the last event it carried (Last-Event-ID), FOLLOW_ATTEMPTS times in a row at most."""
    failures = 0
    while True:
        events = client.stream(
            "tasks/resubscribe", {"id": task_id}, last_event_id=client.last_event_id
        )
        try:
            async with contextlib.aclosing(events):
                async for result in events:
                    check(client, "tasks/resubscribe", result)
                    transcript.show(result)
                    failures = 0
                    if transcript.ended:
                        return
        except TransportError:
            if failures + 1 >= FOLLOW_ATTEMPTS:
                raise
        failures += 1
        if failures >= FOLLOW_ATTEMPTS:
            return  # the stream kept ending before the turn did: `_outcome` says so
        _say(f"the stream dropped; resuming ({failures})")
        await asyncio.sleep(min(failures, FOLLOW_PAUSE_SECONDS))


def task_get(args: argparse.Namespace) -> int:
    return run_client(args, lambda endpoint: _task_call(args, endpoint, "tasks/get"))


def task_cancel(args: argparse.Namespace) -> int:
    return run_client(args, lambda endpoint: _task_call(args, endpoint, "tasks/cancel"))


async def _task_call(args: argparse.Namespace, endpoint: str, method: str) -> int:
    params: dict[str, Any] = {"id": args.id}
    if getattr(args, "history_length", None) is not None:
        params["historyLength"] = args.history_length
    async with httpx.AsyncClient(timeout=CALL_TIMEOUT) as http:
        client = client_for(http, args, endpoint)
        task = await client.call(method, params)
    check(client, method, task, task=True)
    return _print_task(args, task, method, history="historyLength" in params)


def _print_task(
    args: argparse.Namespace, task: dict[str, Any], method: str, *, history: bool
) -> int:
    """Print `task` (JSON with --json); the exit code of `method`'s answer."""
    if args.json:
        print(json_text(task, indent=True))
    else:
        print("\n".join(task_lines(task, history=history)))
    state = task["status"].get("state")
    if method == "tasks/cancel":
        return 0 if state == "canceled" else 1
    return 1 if state in UNSUCCESSFUL else 0
