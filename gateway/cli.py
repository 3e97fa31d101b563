"""`a2a-gateway serve` runs the gateway; `a2a-gateway dev` runs the whole stack on loopback;
`a2a-gateway send` and `a2a-gateway task` talk to any A2A v0.2.5 server."""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from temporalio.client import Client

from gateway.app import create_app
from gateway.auth import ACCESS_TOKEN_PARAM, API_KEY_PARAM
from gateway.client import (
    DEFAULT_URL,
    A2AClient,
    ClientError,
    RpcError,
    TransportError,
    endpoint_url,
)
from gateway.devstack import (
    DevStackError,
    ManagedProcess,
    port_is_free,
    register_search_attributes,
    start_redis,
    start_temporal,
)
from gateway.display import INTERRUPTED, UNSUCCESSFUL, Spinner, Transcript, task_lines
from gateway.settings import GatewaySettings
from protocol import AgentsConfig, AgentsConfigError
from protocol.telemetry import (
    TEXT_FORMAT,
    TelemetryConfigError,
    configure_logging,
    configure_tracing,
)

logger = logging.getLogger(__name__)


class _GatewayServer(uvicorn.Server):
    """Ends open SSE streams as soon as shutdown begins; clients resume on another replica with
    Last-Event-ID instead of holding this one for the whole graceful-shutdown timeout."""

    def __init__(self, app: Starlette, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        end_streams = getattr(self._app.state, "end_streams", None)
        if end_streams is not None:
            end_streams()
        super().handle_exit(sig, frame)


class _RedactCredentials(logging.Filter):
    """Browser streams may carry a credential in the query string (EventSource cannot set headers);
    the access log shows the path with the value blanked, however the parameter's name is encoded."""

    _NAMES = frozenset({API_KEY_PARAM, ACCESS_TOKEN_PARAM})

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            args[2] = self._redact(str(args[2]))
            record.args = tuple(args)
        return True

    def _redact(self, path: str) -> str:
        base, mark, query = path.partition("?")
        if not mark:
            return path
        fields = []
        for field in query.split("&"):
            name, equals, _ = field.partition("=")
            secret = equals and urllib.parse.unquote_plus(name) in self._NAMES
            fields.append(f"{name}=[redacted]" if secret else field)
        return f"{base}?{'&'.join(fields)}"


def serve(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = GatewaySettings(**overrides)
    configure_logging(settings.log_format)
    tracing = configure_tracing("a2a-gateway")
    try:
        app = create_app(settings)
        logging.getLogger("uvicorn.access").addFilter(_RedactCredentials())
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            timeout_graceful_shutdown=10,
        )
        _GatewayServer(app, config).run()
    finally:
        if tracing is not None:
            tracing.shutdown()
    return 0


@dataclass
class DevPorts:
    host: str
    port: int
    temporal_port: int
    temporal_ui_port: int
    redis_port: int
    # The first worker's metrics port, the next worker's the one after it...; 0 = no metrics.
    worker_metrics_port: int = 0
    workers: int = 0


def _check_ports(ports: DevPorts, temporal_external: bool, redis_external: bool) -> None:
    wanted = [(ports.port, "--port")]
    if not temporal_external:
        wanted += [
            (ports.temporal_port, "--temporal-port"),
            (ports.temporal_ui_port, "--temporal-ui-port"),
        ]
    if not redis_external:
        wanted.append((ports.redis_port, "--redis-port"))
    if ports.worker_metrics_port:
        first = ports.worker_metrics_port
        wanted += [(port, "--worker-metrics-port") for port in range(first, first + ports.workers)]
    for port, flag in wanted:
        if not port_is_free(ports.host, port):
            raise DevStackError(
                f"port {port} on {ports.host} is in use; choose another with {flag}"
            )


def dev(args: argparse.Namespace) -> int:
    # One worker per agent; a bad agents file fails here, before anything starts.
    gateway_settings = GatewaySettings(**({"config": args.config} if args.config else {}))
    agents = gateway_settings.agents_config()
    ports = DevPorts(
        args.host,
        args.port,
        args.temporal_port,
        args.temporal_ui_port,
        args.redis_port,
        args.worker_metrics_port,
        len(agents.agents),
    )
    temporal_address = os.environ.get("TEMPORAL_ADDRESS")
    redis_url = os.environ.get("REDIS_URL")
    _check_ports(ports, temporal_address is not None, redis_url is not None)
    data_dir = Path(args.data_dir).resolve()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    started: list[ManagedProcess] = []
    try:
        if temporal_address is None:
            with open(logs / "temporal.log", "ab") as log:
                started.append(
                    start_temporal(
                        host=ports.host,
                        port=ports.temporal_port,
                        ui_port=ports.temporal_ui_port,
                        db_file=data_dir / "temporal.db",
                        log=log,
                    )
                )
            temporal_address = f"{ports.host}:{ports.temporal_port}"
        else:
            asyncio.run(_prepare_existing_temporal(temporal_address))
        if redis_url is None:
            with open(logs / "redis.log", "ab") as log:
                started.append(
                    start_redis(host=ports.host, port=ports.redis_port, data_dir=data_dir, log=log)
                )
            redis_url = f"redis://{ports.host}:{ports.redis_port}/0"
        env = {**os.environ, "TEMPORAL_ADDRESS": temporal_address, "REDIS_URL": redis_url}
        if args.config:
            env["A2A_CONFIG"] = str(Path(args.config).resolve())
        metrics = _start_workers(agents, env, logs, started, ports)
        gateway_env = {**env, "A2A_GATEWAY_HOST": ports.host, "A2A_GATEWAY_PORT": str(ports.port)}
        if started and started[0].name == "Temporal dev server":
            ui_url = f"http://{ports.host}:{ports.temporal_ui_port}"
            gateway_env.setdefault("A2A_GATEWAY_TEMPORAL_UI_URL", ui_url)
        with open(logs / "gateway.log", "ab") as log:
            started.append(
                ManagedProcess(
                    "gateway", [sys.executable, "-m", "gateway", "serve"], env=gateway_env, log=log
                )
            )
        base = f"http://{ports.host}:{ports.port}"
        _wait_ready(f"{base}/readyz", started, stop)
        if stop.is_set():
            return 0
        ui_port = ports.temporal_ui_port if started[0].name == "Temporal dev server" else None
        lines = _banner(base, gateway_settings, metrics, ui_port, logs)
        print("\n".join(lines), flush=True)
        while not stop.wait(0.5):
            dead = [p for p in started if not p.running()]
            if dead:
                raise DevStackError(
                    f"{dead[0].name} exited with code {dead[0].process.returncode}; see {logs}"
                )
        return 0
    finally:
        for process in reversed(started):
            process.stop()


def _banner(
    base: str,
    settings: GatewaySettings,
    worker_metrics: dict[str, str],
    temporal_ui_port: int | None,
    logs: Path,
) -> list[str]:
    """What `dev` prints once the stack is ready: where everything is."""
    agents = settings.agents_config().agents
    lines = [
        f"A2A JSON-RPC endpoint  {base}/",
        f"Agent card             {base}/.well-known/agent.json",
        f"Web console            {base}/ui/",
    ]
    if len(agents) > 1:
        lines += [f"Agent {agent:<16.16} {base}/agents/{agent}" for agent in agents]
    if settings.metrics:
        lines.append(f"Gateway metrics        {base}/metrics")
    lines += [f"{agent + ' worker metrics':<22.22} {url}" for agent, url in worker_metrics.items()]
    if temporal_ui_port is not None:
        host = urllib.parse.urlsplit(base).hostname
        lines.append(f"Temporal UI            http://{host}:{temporal_ui_port}")
    return [*lines, f"Logs                   {logs}", "Press Ctrl-C to stop."]


def _start_workers(
    agents: AgentsConfig,
    env: dict[str, str],
    logs: Path,
    started: list[ManagedProcess],
    ports: DevPorts,
) -> dict[str, str]:
    """A worker per agent (added to `started` as each starts), but for Claude agents while
    ANTHROPIC_API_KEY is unset (it says so). Returns each worker's metrics URL."""
    metrics = {}
    for index, (agent, config) in enumerate(agents.agents.items()):
        if config.kind == "claude" and not env.get("ANTHROPIC_API_KEY"):
            print(f"Agent '{agent}' (claude) has no worker: set ANTHROPIC_API_KEY", flush=True)
            continue
        worker_env = {**env, "A2A_WORKER_METRICS_PORT": "0"}
        if ports.worker_metrics_port:
            metrics_port = ports.worker_metrics_port + index
            metrics[agent] = f"http://{ports.host}:{metrics_port}/metrics"
            # Temporal's exporter binds an address, not a name such as localhost.
            worker_env["A2A_WORKER_METRICS_HOST"] = socket.gethostbyname(ports.host)
            worker_env["A2A_WORKER_METRICS_PORT"] = str(metrics_port)
        with open(logs / f"worker-{agent}.log", "ab") as log:
            started.append(
                ManagedProcess(
                    f"{agent} worker",
                    [sys.executable, "-m", "workers", "--agent", agent],
                    env=worker_env,
                    log=log,
                )
            )
    return metrics


async def _prepare_existing_temporal(address: str) -> None:
    settings = GatewaySettings(temporal_address=address)
    try:
        client = await Client.connect(address, namespace=settings.temporal_namespace)
    except RuntimeError as err:
        raise DevStackError(
            f"cannot reach Temporal at {address} (TEMPORAL_ADDRESS): {err}"
        ) from err
    added = await register_search_attributes(client, settings.temporal_namespace)
    if added:
        logger.info("registered search attributes %s on %s", ", ".join(added), address)


def _wait_ready(url: str, processes: list[ManagedProcess], stop: threading.Event) -> None:
    deadline = time.monotonic() + 60
    while not stop.is_set():
        for process in processes:
            if not process.running():
                raise DevStackError(f"{process.name} exited with code {process.process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise DevStackError(f"the gateway did not become ready at {url} within 60s")
        stop.wait(0.2)


SEND_DESCRIPTION = """\
Send TEXT to an A2A agent and show its task: the task's id, each status change and the reply.

In a terminal the reply appears as the agent writes it, with a progress line on stderr. Piped, the
output is plain lines: "task <id> (context <id>)", then a line per status change ("working",
"working: tool add {...}"), then the reply's text once, then the final state ("completed",
"failed: <why>", "input-required: <what the agent asks>"). How to go on (reply to an
input-required task, follow a task still running) and errors go to stderr.

It streams (message/stream) unless the agent card at <endpoint>/.well-known/agent.json (or at the
server's root) says capabilities.streaming is not true, or --no-stream is given."""
EXIT_CODES = """\
exit codes:
  0    the task completed, waits for input (input-required, auth-required) or is still running
  1    the task failed, was rejected or canceled (task cancel: the task is not canceled)
  2    the server answered with a JSON-RPC error, printed as "error <code>: <message>"; bad usage
  3    no JSON-RPC answer: the server is unreachable, answered an HTTP error, or cut the stream short
  130  interrupted (Ctrl-C); the task goes on"""
OUTPUT_MODES = ["text/plain", "application/json"]
# The agent card may be slow; a task's answer may take as long as the task (the server decides).
HTTP_TIMEOUT = httpx.Timeout(10.0, read=None)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not JSON: {err}") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("not a JSON object")
    return value


def _client(http: httpx.AsyncClient, args: argparse.Namespace) -> A2AClient:
    url = args.url or os.environ.get("A2A_URL") or DEFAULT_URL
    headers = {}
    api_key = args.api_key or os.environ.get("A2A_API_KEY")
    if api_key:
        header = args.api_key_header or os.environ.get("A2A_API_KEY_HEADER") or "X-API-Key"
        headers[header] = api_key
    token = args.token or os.environ.get("A2A_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return A2AClient(http, endpoint_url(url, args.agent), headers=headers)


def _command(args: argparse.Namespace, *words: str) -> str:
    """The command line that goes on with this task, with the --url and --agent given to this one."""
    command = ["a2a-gateway", *words]
    if args.url:
        command += ["--url", args.url]
    if args.agent:
        command += ["--agent", args.agent]
    return shlex.join(command)


def _run_client(command: Coroutine[Any, Any, int]) -> int:
    # Like any filter: a reader that goes away (`| head`) ends the command quietly.
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    # Text the terminal or pipe cannot encode is replaced rather than fatal.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")
    try:
        return asyncio.run(command)
    except KeyboardInterrupt:
        return 130
    except RpcError as err:
        status = f" (HTTP {err.status})" if err.status != 200 else ""
        print(f"{err}{status}", file=sys.stderr)
        if err.data is not None:
            print(f"data: {orjson.dumps(err.data, default=str).decode()}", file=sys.stderr)
        return 2
    except TransportError as err:
        print(err, file=sys.stderr)
        return 3


def send(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text
    return _run_client(_send(args, text))


async def _send(args: argparse.Namespace, text: str) -> int:
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
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        client = _client(http, args)
        stream = not args.no_stream and await _streams(client)
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
            print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return _outcome(args, transcript, stream=stream)


async def _streams(client: A2AClient) -> bool:
    """Whether to use message/stream: the agent card says the agent streams, or there is no card."""
    card = await client.agent_card()
    if card is None:
        return True
    capabilities = card.get("capabilities")
    return isinstance(capabilities, dict) and capabilities.get("streaming") is True


async def _artifact_ids(client: A2AClient, task_id: str) -> list[str]:
    """The artifacts a task has before this message, so that only the reply's are printed."""
    try:
        task = await client.call("tasks/get", {"id": task_id, "historyLength": 0})
    except ClientError:
        return []  # message/send will say what is wrong
    artifacts = task.get("artifacts") if isinstance(task, dict) else None
    return [str(a.get("artifactId")) for a in artifacts or [] if isinstance(a, dict)]


async def _follow(
    args: argparse.Namespace,
    client: A2AClient,
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
            async for result in client.stream("message/stream", params):
                transcript.show(result)
                if transcript.ended:
                    break
        else:
            params["configuration"]["blocking"] = True
            result = await client.call("message/send", params)
            transcript.show(result)
        transcript.end()
    except asyncio.CancelledError:
        transcript.close()
        if transcript.task_id is not None:
            follow = _command(args, "task", "get", transcript.task_id)
            print(f"interrupted; the task goes on: {follow}", file=sys.stderr)
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
        print("the answer carried neither a Task nor a Message", file=sys.stderr)
        return 3
    if task_id is not None and not transcript.ended:
        follow = _command(args, "task", "get", task_id)
        if stream:
            print(
                f"the stream ended before the turn did; follow the task with: {follow}",
                file=sys.stderr,
            )
            return 3
        print(f"the task is still {transcript.state}; follow it with: {follow}", file=sys.stderr)
        return 0
    if task_id is not None and transcript.state in INTERRUPTED:
        reply = _command(args, "send", "--task-id", task_id)
        print(f'reply with: {reply} "<your reply>"', file=sys.stderr)
    return 1 if transcript.state in UNSUCCESSFUL else 0


def task_get(args: argparse.Namespace) -> int:
    return _run_client(_task_call(args, "tasks/get"))


def task_cancel(args: argparse.Namespace) -> int:
    return _run_client(_task_call(args, "tasks/cancel"))


async def _task_call(args: argparse.Namespace, method: str) -> int:
    params: dict[str, Any] = {"id": args.id}
    if getattr(args, "history_length", None) is not None:
        params["historyLength"] = args.history_length
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        task = await _client(http, args).call(method, params)
    if not isinstance(task, dict):
        raise TransportError(f"{method} answered {orjson.dumps(task).decode()}, not a Task")
    if args.json:
        print(orjson.dumps(task, option=orjson.OPT_INDENT_2).decode())
    else:
        print("\n".join(task_lines(task, history="historyLength" in params)))
    state = (task.get("status") or {}).get("state")
    if method == "tasks/cancel":
        return 0 if state == "canceled" else 1
    return 1 if state in UNSUCCESSFUL else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="a2a-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run the gateway (settings from A2A_GATEWAY_*)")
    serve_cmd.add_argument("--host", help="bind address (A2A_GATEWAY_HOST; default 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, help="port (A2A_GATEWAY_PORT; default 8000)")
    dev_cmd = commands.add_parser(
        "dev", help="run Temporal, Redis, the gateway and an echo worker on loopback"
    )
    dev_cmd.add_argument("--host", default="127.0.0.1")
    dev_cmd.add_argument("--port", type=int, default=8000, help="gateway port")
    dev_cmd.add_argument("--temporal-port", type=int, default=7233)
    dev_cmd.add_argument("--temporal-ui-port", type=int, default=8233)
    dev_cmd.add_argument("--redis-port", type=int, default=6390, help="port of the embedded Redis")
    dev_cmd.add_argument(
        "--worker-metrics-port",
        type=int,
        default=9464,
        help="the first worker's metrics port, the next one's the port after it (0: none)",
    )
    dev_cmd.add_argument("--data-dir", default=".a2a", help="Temporal's sqlite file and the logs")
    dev_cmd.add_argument(
        "--config", help="the agents file (A2A_CONFIG): a worker runs for each of its agents"
    )
    serve_cmd.set_defaults(run=serve)
    dev_cmd.set_defaults(run=dev)
    _add_client_commands(commands)
    return parser


def _add_client_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    connection = argparse.ArgumentParser(add_help=False)
    connection.add_argument(
        "--url",
        help=f"the server's JSON-RPC endpoint, any A2A v0.2.5 server (A2A_URL; default {DEFAULT_URL})",
    )
    connection.add_argument(
        "--agent", metavar="NAME", help="this gateway's agent NAME: the endpoint <url>/agents/NAME"
    )
    connection.add_argument(
        "--api-key", metavar="KEY", help="sent in the X-API-Key header (A2A_API_KEY)"
    )
    connection.add_argument(
        "--api-key-header",
        metavar="HEADER",
        help="the API key's header (A2A_API_KEY_HEADER; default X-API-Key)",
    )
    connection.add_argument("--token", help="sent as Authorization: Bearer TOKEN (A2A_TOKEN)")
    connection.add_argument(
        "--json", action="store_true", help="print the Task as JSON, nothing else"
    )
    send_cmd = commands.add_parser(
        "send",
        parents=[connection],
        help="send a message to an A2A agent and show its task as it runs",
        description=SEND_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXIT_CODES,
    )
    send_cmd.add_argument(
        "text", metavar="TEXT", help='the message\'s text ("-": read it from stdin)'
    )
    send_cmd.add_argument(
        "--no-stream",
        action="store_true",
        help="message/send: wait for the turn's end, then print it",
    )
    send_cmd.add_argument("--context-id", metavar="ID", help="continue this conversation")
    send_cmd.add_argument(
        "--task-id", metavar="ID", help="reply to this task (one that is input-required)"
    )
    send_cmd.add_argument(
        "--metadata",
        type=_json_object,
        metavar="JSON",
        help="the message's metadata, a JSON object",
    )
    send_cmd.set_defaults(run=send)
    task_cmd = commands.add_parser("task", help="look at or cancel a task")
    task_commands = task_cmd.add_subparsers(dest="task_command", required=True)
    get_cmd = task_commands.add_parser(
        "get",
        parents=[connection],
        help="print a task (tasks/get)",
        description="Print a task as send does: its task line, its reply's text, its state.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXIT_CODES,
    )
    get_cmd.add_argument("id", help="the task's id")
    get_cmd.add_argument(
        "--history-length",
        type=int,
        metavar="N",
        help='also print its last N messages, as lines "<role>: <text>"',
    )
    get_cmd.set_defaults(run=task_get)
    cancel_cmd = task_commands.add_parser(
        "cancel",
        parents=[connection],
        help="cancel a task (tasks/cancel)",
        description="Cancel a task and print it as task get does.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXIT_CODES,
    )
    cancel_cmd.add_argument("id", help="the task's id")
    cancel_cmd.set_defaults(run=task_cancel)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    # The client commands print what they have to say; httpx's request log would only add noise.
    server = args.command in ("serve", "dev")
    logging.basicConfig(level=logging.INFO if server else logging.WARNING, format=TEXT_FORMAT)
    try:
        code = args.run(args)
    except (DevStackError, AgentsConfigError, TelemetryConfigError) as err:
        print(f"a2a-gateway {args.command}: {err}", file=sys.stderr, flush=True)
        code = 1
    except subprocess.SubprocessError as err:
        print(f"a2a-gateway {args.command}: {err}", file=sys.stderr, flush=True)
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # temporalio can abort at interpreter exit; leave without running finalizers.
    os._exit(code)
