"""`a2a-gateway dev`, what `make run` calls: the whole stack up on loopback, then down with nothing left."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gateway.devstack import free_port


def children_of(pid: int) -> list[int]:
    found = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(line) for line in found.stdout.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def dev_env() -> dict[str, str]:
    # `dev` uses existing servers when these are set; this test wants it to start its own.
    return {k: v for k, v in os.environ.items() if k not in ("TEMPORAL_ADDRESS", "REDIS_URL")}


def test_dev_starts_stack_answers_send_and_stops_everything(
    tmp_path: Path, dev_env: dict[str, str]
) -> None:
    port, temporal_port, ui_port, redis_port = (free_port() for _ in range(4))
    args = [
        sys.executable, "-m", "gateway", "dev",
        "--port", str(port),
        "--temporal-port", str(temporal_port),
        "--temporal-ui-port", str(ui_port),
        "--redis-port", str(redis_port),
        "--data-dir", str(tmp_path / "data"),
    ]  # fmt: skip
    with (
        (tmp_path / "dev.err").open("w") as errors,
        subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=errors, env=dev_env, text=True
        ) as dev,
    ):
        try:
            _run_and_stop(dev, tmp_path, port, ui_port)
        finally:
            if dev.poll() is None:
                dev.kill()


def _run_and_stop(dev: subprocess.Popen[str], tmp_path: Path, port: int, ui_port: int) -> None:
    assert dev.stdout is not None
    printed = [dev.stdout.readline() for _ in range(5)]
    assert printed == [
        f"A2A JSON-RPC endpoint  http://127.0.0.1:{port}/\n",
        f"Agent card             http://127.0.0.1:{port}/.well-known/agent.json\n",
        f"Temporal UI            http://127.0.0.1:{ui_port}\n",
        f"Logs                   {tmp_path / 'data' / 'logs'}\n",
        "Press Ctrl-C to stop.\n",
    ]
    children = children_of(dev.pid)
    assert len(children) == 4  # Temporal, Redis, worker, gateway

    with httpx.Client(timeout=30) as http:
        response = http.post(
            f"http://127.0.0.1:{port}/",
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "message/send",
                "params": {
                    "message": {
                        "role": "user",
                        "parts": [{"kind": "text", "text": "hello"}],
                        "messageId": "m1",
                    }
                },
            },
        )
        task = response.json()["result"]
        assert (task["status"]["state"], task["artifacts"][0]["parts"]) == (
            "completed",
            [{"kind": "text", "text": "hello"}],
        )
        ui = http.get(f"http://127.0.0.1:{ui_port}/")
        assert ui.status_code == 200
    assert (tmp_path / "data" / "temporal.db").exists()

    dev.send_signal(signal.SIGTERM)
    assert dev.wait(timeout=60) == 0
    assert [pid for pid in children if alive(pid)] == []


def test_dev_taken_port_one_line_error_naming_flag(tmp_path: Path, dev_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway",
                "dev",
                "--temporal-port",
                str(port),
                "--data-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            env=dev_env,
            timeout=60,
            check=False,
        )
    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        f"a2a-gateway dev: port {port} on 127.0.0.1 is in use; choose another with --temporal-port\n",
    )
