"""`a2a-gateway dev`: the whole stack on loopback (Temporal dev server, Redis, a worker per agent, a
gateway process), its URLs printed once it is ready, all stopped on Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from config import temporal
from config.agents import AgentsConfig, AgentsConfigError
from config.telemetry import TEXT_FORMAT
from gateway.devstack.processes import (
    TEMPORAL_DEV_SERVER,
    DevStackError,
    ManagedProcess,
    port_is_free,
    register_search_attributes,
    start_redis,
    start_temporal,
)
from gateway.settings import GatewaySettings

logger = logging.getLogger(__name__)

# The echo agent `dev` runs without an agents file: its reply in this many chunks, this many seconds
# apart (a turn of at most a second stays a quick turn, `workers.agents.echo`).
DEV_ECHO_CHUNKS = 5
DEV_ECHO_DELAY = 0.25
DEV_SHUTDOWN_GRACE = 2.0
# REDIS_URL when REDIS_SENTINELS names the Redis to use (database 0, no credentials).
SENTINEL_URL = "redis://sentinel-named-primary/0"


def main(args: argparse.Namespace) -> int:
    """`a2a-gateway dev`, with a start-up failure told in one line (exit 1)."""
    logging.basicConfig(level=logging.INFO, format=TEXT_FORMAT, force=True)
    try:
        return dev(args)
    except (DevStackError, AgentsConfigError, subprocess.SubprocessError) as err:
        print(f"a2a-gateway dev: {err}", file=sys.stderr, flush=True)
        return 1


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
    temporal_address = _existing_temporal()
    redis_url = os.environ.get("REDIS_URL")
    if redis_url is None and os.environ.get("REDIS_SENTINELS"):
        # The sentinels say where the primary is; the URL would give only its database and user.
        redis_url = SENTINEL_URL
    _check_ports(ports, temporal_address is not None, redis_url is not None)
    data_dir = Path(args.data_dir).resolve()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    started: list[ManagedProcess] = []
    try:
        env = _start_engines(ports, data_dir, started, temporal_address, redis_url)
        if args.config:
            env["A2A_CONFIG"] = str(Path(args.config).resolve())
        metrics = _start_workers(agents, env, logs, started, ports)
        _start_gateway(env, ports, logs, started)
        base = f"http://{ports.host}:{ports.port}"
        _wait_ready(f"{base}/readyz", started, stop)
        if stop.is_set():
            return 0
        ui_port = ports.temporal_ui_port if _runs_temporal(started) else None
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
        _stop(started)


def _stop(started: list[ManagedProcess]) -> None:
    """Stop what was started, the last first: the gateway and the workers (which finish or hand
    back their turns while Temporal still answers), then Redis and Temporal."""
    running = [process for process in reversed(started) if process.running()]
    if not running:
        return
    print(f"Stopping {', '.join(p.name for p in running)}...", flush=True)
    for process in running:
        process.stop()
    print("Stopped.", flush=True)


def _runs_temporal(started: list[ManagedProcess]) -> bool:
    return bool(started) and started[0].name == TEMPORAL_DEV_SERVER


def _start_engines(
    ports: DevPorts,
    data_dir: Path,
    started: list[ManagedProcess],
    temporal_address: str | None,
    redis_url: str | None,
) -> dict[str, str]:
    """Temporal and Redis, each started here unless TEMPORAL_ADDRESS / REDIS_URL name one already
    running; the environment that points the other processes at them."""
    logs = data_dir / "logs"
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
                start_redis(
                    host=ports.host,
                    port=ports.redis_port,
                    data_dir=data_dir,
                    log=log,
                    persist=True,
                )
            )
        redis_url = f"redis://{ports.host}:{ports.redis_port}/0"
    return {**os.environ, "TEMPORAL_ADDRESS": temporal_address, "REDIS_URL": redis_url}


def _start_gateway(
    env: dict[str, str], ports: DevPorts, logs: Path, started: list[ManagedProcess]
) -> None:
    gateway_env = {**env, "A2A_GATEWAY_HOST": ports.host, "A2A_GATEWAY_PORT": str(ports.port)}
    if _runs_temporal(started):
        ui_url = f"http://{ports.host}:{ports.temporal_ui_port}"
        gateway_env.setdefault("A2A_GATEWAY_TEMPORAL_UI_URL", ui_url)
    with open(logs / "gateway.log", "ab") as log:
        started.append(
            ManagedProcess(
                "gateway", [sys.executable, "-m", "gateway", "serve"], env=gateway_env, log=log
            )
        )


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
        f"A2A HTTP+JSON (1.0)    {base}/rest",
        f"Agent card             {base}/.well-known/agent-card.json",
        f"Agent card (0.2.5)     {base}/.well-known/agent.json",
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
        # Ctrl-C: a running turn is handed back to Temporal after this long, not the default 10 s.
        worker_env.setdefault("A2A_WORKER_SHUTDOWN_GRACE_SECONDS", f"{DEV_SHUTDOWN_GRACE:g}")
        if "A2A_CONFIG" not in env:
            # The echo agent of no agents file streams visibly, as compose's (deploy/agents.toml).
            worker_env.setdefault("A2A_WORKER_ECHO_CHUNKS", str(DEV_ECHO_CHUNKS))
            worker_env.setdefault("A2A_WORKER_ECHO_DELAY", f"{DEV_ECHO_DELAY:g}")
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


def _existing_temporal() -> str | None:
    """The address of a Temporal to use instead of starting one: TEMPORAL_ADDRESS, or the address of
    the profile TEMPORAL_PROFILE names (a default profile alone does not count: `make run` starts its
    own Temporal whatever `temporal.toml` holds)."""
    address = os.environ.get("TEMPORAL_ADDRESS")
    if address is None and os.environ.get("TEMPORAL_PROFILE"):
        address = GatewaySettings().temporal_address
    return address


async def _prepare_existing_temporal(address: str) -> None:
    settings = GatewaySettings(temporal_address=address)
    try:
        connection = temporal.load(address, settings.temporal_namespace)
        client = await connection.connect()
    except temporal.TemporalConfigError as err:
        raise DevStackError(str(err)) from err
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
