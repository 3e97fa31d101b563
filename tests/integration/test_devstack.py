"""`a2a-gateway dev`, what `make run` calls: the whole stack up on loopback, then down with nothing left;
its tasks found in Temporal by their search attributes, with their summary and current details."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client

from gateway.devstack.processes import free_port, temporal_binary
from tests.a2a_schema import assert_valid_response
from tests.integration.sse import echo_message, rpc_body
from tests.waiting import eventually, eventually_sync


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


@dataclass
class DevStack:
    process: subprocess.Popen[str]
    port: int
    temporal_port: int
    ui_port: int
    worker_metrics_port: int

    def banner(self) -> list[str]:
        """The lines `dev` prints once the stack is ready, up to the last one."""
        assert self.process.stdout is not None
        lines: list[str] = []
        while not lines or lines[-1] not in ("Press Ctrl-C to stop.\n", ""):
            lines.append(self.process.stdout.readline())
        return lines


@contextlib.contextmanager
def dev_stack(tmp_path: Path, env: dict[str, str]) -> Iterator[DevStack]:
    """`a2a-gateway dev` on free ports, stopped (SIGTERM, then SIGKILL) unless the test stopped it."""
    port, temporal_port, ui_port, redis_port, metrics_port = (free_port() for _ in range(5))
    args = [
        sys.executable, "-m", "gateway", "dev",
        "--port", str(port),
        "--temporal-port", str(temporal_port),
        "--temporal-ui-port", str(ui_port),
        "--redis-port", str(redis_port),
        "--worker-metrics-port", str(metrics_port),
        "--data-dir", str(tmp_path / "data"),
    ]  # fmt: skip
    with (
        (tmp_path / "dev.err").open("w") as errors,
        # A process group of its own, as a terminal's foreground job: Ctrl-C is SIGINT to the group.
        subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=errors, env=env, text=True, process_group=0
        ) as dev,
    ):
        try:
            yield DevStack(dev, port, temporal_port, ui_port, metrics_port)
        finally:
            if dev.poll() is None:
                dev.send_signal(signal.SIGTERM)
                try:
                    dev.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    dev.kill()


def test_dev_starts_stack_answers_send_and_stops_everything(
    tmp_path: Path, dev_env: dict[str, str]
) -> None:
    with dev_stack(tmp_path, dev_env) as stack:
        _run_and_stop(stack, tmp_path)


def _run_and_stop(stack: DevStack, tmp_path: Path) -> None:
    dev, port, ui_port = stack.process, stack.port, stack.ui_port
    assert stack.banner() == [
        f"A2A JSON-RPC endpoint  http://127.0.0.1:{port}/\n",
        f"A2A HTTP+JSON (1.0)    http://127.0.0.1:{port}/rest\n",
        f"Agent card             http://127.0.0.1:{port}/.well-known/agent-card.json\n",
        f"Agent card (0.2.5)     http://127.0.0.1:{port}/.well-known/agent.json\n",
        f"Web console            http://127.0.0.1:{port}/ui/\n",
        f"Gateway metrics        http://127.0.0.1:{port}/metrics\n",
        f"echo worker metrics    http://127.0.0.1:{stack.worker_metrics_port}/metrics\n",
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
        # Without an agents file, dev's echo agent streams its reply: five chunks, a letter each.
        assert (task["status"]["state"], task["artifacts"][0]["parts"]) == (
            "completed",
            [{"kind": "text", "text": letter} for letter in "hello"],
        )
        ui = http.get(f"http://127.0.0.1:{ui_port}/")
        assert ui.status_code == 200
        # A turn still running at Ctrl-C: a second chunk a minute after the first.
        slow = {"message": echo_message("slow", chunks=2, delay=60)}
        slow["configuration"] = {"blocking": False}
        body = rpc_body("message/send", slow)
        task_id = http.post(f"http://127.0.0.1:{port}/", json=body).json()["result"]["id"]

        def working() -> bool:
            get = rpc_body("tasks/get", {"id": task_id})
            got = http.post(f"http://127.0.0.1:{port}/", json=get).json()["result"]
            return bool(got["status"]["state"] == "working")

        eventually_sync(working, 30, what="the slow turn to start")
    assert (tmp_path / "data" / "temporal.db").exists()

    # Ctrl-C in a terminal: SIGINT to the foreground process group, which holds `dev` alone (each
    # child has a group of its own), so `dev` stops them in order, saying so.
    os.killpg(dev.pid, signal.SIGINT)
    assert dev.wait(timeout=60) == 0
    assert dev.stdout is not None
    assert dev.stdout.read() == (
        "Stopping gateway, echo worker, Redis, Temporal dev server...\nStopped.\n"
    )
    assert [pid for pid in children if alive(pid)] == []
    # The worker stopped while Temporal still answered: its turn handed back, no retried calls.
    worker_log = (tmp_path / "data" / "logs" / "worker-echo.log").read_text()
    assert "retried" not in worker_log
    assert "Traceback" not in worker_log


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


async def test_dev_task_found_by_each_search_attribute_with_summary_and_details(
    tmp_path: Path, dev_env: dict[str, str]
) -> None:
    with dev_stack(tmp_path, dev_env) as stack:
        await asyncio.to_thread(stack.banner)
        temporal = await Client.connect(f"127.0.0.1:{stack.temporal_port}")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.port}", timeout=30) as http:
            await _find_tasks_by_search_attributes(temporal, http, stack.temporal_port)


async def _find_tasks_by_search_attributes(
    temporal: Client, http: httpx.AsyncClient, temporal_port: int
) -> None:
    message = echo_message("Plan  the\nlaunch", finalState="input-required")
    asking = await _call(http, "message/send", {"message": message})
    task_id, context_id = asking["id"], asking["contextId"]
    assert asking["status"]["state"] == "input-required"
    assert await _listed(temporal, 'A2AState="input-required"', [task_id]) == [task_id]
    assert await _listed(temporal, f'A2AContextId="{context_id}"', [task_id]) == [task_id]
    assert await _listed(temporal, 'A2AAgent="echo"', [task_id]) == [task_id]
    assert await _ui_texts(temporal, task_id) == (
        "Plan the launch",
        "input-required: Echoed 16 characters. Send another message to continue.",
    )

    follow_up = {**echo_message("go"), "taskId": task_id}
    done = await _call(http, "message/send", {"message": follow_up})
    assert done["status"]["state"] == "completed"
    assert await _listed(temporal, 'A2AState="completed"', [task_id]) == [task_id]
    assert await _listed(temporal, 'A2AState="input-required"', []) == []
    assert await _ui_texts(temporal, task_id) == ("Plan the launch", "completed")

    # A second chunk a minute later keeps a task working until it is canceled: by its client
    # (tasks/cancel) or by an operator (`temporal workflow cancel`, as from the Temporal UI).
    slow = {"blocking": False}
    by_client = await _call(
        http,
        "message/send",
        {"message": echo_message("x" * 300, chunks=2, delay=60), "configuration": slow},
    )
    by_operator = await _call(
        http,
        "message/send",
        {"message": echo_message("Stop me", chunks=2, delay=60), "configuration": slow},
    )
    working = sorted([by_client["id"], by_operator["id"]])
    assert await _listed(temporal, 'A2AState="working"', working) == working
    assert await _cli_list(temporal_port, 'A2AState="working"') == working
    canceled = await _call(http, "tasks/cancel", {"id": by_client["id"]})
    assert canceled["status"]["state"] == "canceled"
    await _temporal_cli(temporal_port, "workflow", "cancel", "--workflow-id", by_operator["id"])
    assert await _listed(temporal, 'A2AState="canceled"', working) == working
    assert await _listed(temporal, 'A2AState="working"', []) == []
    operator_canceled = await _call(http, "tasks/get", {"id": by_operator["id"]})
    assert operator_canceled["status"]["state"] == "canceled"
    assert await _ui_texts(temporal, by_client["id"]) == ("x" * 197 + "…", "canceled")
    assert await _ui_texts(temporal, by_operator["id"]) == ("Stop me", "canceled")
    every_task = sorted([task_id, *working])
    assert await _listed(temporal, 'A2AAgent="echo"', every_task) == every_task


async def _call(http: httpx.AsyncClient, method: str, params: Any) -> Any:
    response = await http.post("/", json=rpc_body(method, params))
    body = response.json()
    assert_valid_response(body, method)
    assert "result" in body, body
    return body["result"]


async def _listed(temporal: Client, query: str, expected: list[str]) -> list[str]:
    """The ids of the workflows `query` finds, sorted, once they are `expected` (within 10 s:
    Temporal's visibility store lags the workflows)."""

    async def found() -> list[str]:
        return sorted([execution.id async for execution in temporal.list_workflows(query)])

    return await eventually(
        found,
        10,
        what=f"the workflows {query} to be {sorted(expected)}",
        until=lambda ids: ids == sorted(expected),
        interval=0.1,
    )


async def _cli_list(temporal_port: int, query: str) -> list[str]:
    """What `temporal workflow list --query` finds, as an operator runs it."""
    output = await _temporal_cli(
        temporal_port, "workflow", "list", "--query", query, "--output", "json"
    )
    return sorted(row["execution"]["workflowId"] for row in json.loads(output))


async def _temporal_cli(temporal_port: int, *args: str) -> bytes:
    cli = await asyncio.create_subprocess_exec(
        temporal_binary(), *args, "--address", f"127.0.0.1:{temporal_port}",
        stdout=subprocess.PIPE,
    )  # fmt: skip
    output, _ = await cli.communicate()
    assert cli.returncode == 0, output
    return output


async def _ui_texts(temporal: Client, task_id: str) -> tuple[str | None, str]:
    """The workflow's summary and current details, as the Temporal UI shows them."""
    handle = temporal.get_workflow_handle(task_id)
    summary = await (await handle.describe()).static_summary()
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return summary, metadata.current_details
