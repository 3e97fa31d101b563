"""What a run leaves behind, for checks after it: the task workflows still running on a task queue
(each with the A2A state it shows in Temporal's visibility), and who the Temporal and Redis servers are
(so a check can tell that neither restarted).

Visibility is eventually consistent: `started_since` and `stranded` wait (bounded) for it to catch up.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from redis.asyncio import Redis
from temporalio.client import Client, WorkflowExecutionStatus

from tests.waiting import eventually
from workflows.names import STATE_ATTRIBUTE
from workflows.task import TaskWorkflow

# The one state in which a running task workflow is where it should be: waiting for the client.
WAITING_FOR_INPUT = "input-required"
TASK_WORKFLOW = "TaskWorkflow"


@dataclass(frozen=True, slots=True)
class Running:
    """A workflow still running: its id (the task id), type, and the A2AState search attribute."""

    workflow_id: str
    workflow_type: str
    state: str | None

    def waiting_for_input(self) -> bool:
        return self.workflow_type == TASK_WORKFLOW and self.state == WAITING_FOR_INPUT


def _window(task_queue: str, since: datetime) -> str:
    return f"TaskQueue = '{task_queue}' AND StartTime >= '{since.isoformat()}'"


async def started_since(client: Client, task_queue: str, since: datetime) -> set[str]:
    """The ids of the workflows started on `task_queue` at or after `since`, whatever their status."""
    return {execution.id async for execution in client.list_workflows(_window(task_queue, since))}


async def running_since(client: Client, task_queue: str, since: datetime) -> list[Running]:
    """The workflows started on `task_queue` at or after `since` that are still running."""
    query = f"{_window(task_queue, since)} AND ExecutionStatus = 'Running'"
    found = []
    async for execution in client.list_workflows(query):
        if execution.status != WorkflowExecutionStatus.RUNNING:
            continue
        state = execution.typed_search_attributes.get(STATE_ATTRIBUTE)
        found.append(Running(execution.id, execution.workflow_type, state))
    return sorted(found, key=lambda running: running.workflow_id)


async def listed(
    client: Client, task_queue: str, since: datetime, ids: Iterable[str], wait_seconds: float
) -> set[str]:
    """The workflows started since `since`, once visibility lists every one of `ids` (the workflows a
    run knows it started); fails naming the ones still missing after `wait_seconds`."""
    wanted = set(ids)
    try:
        return await eventually(
            lambda: started_since(client, task_queue, since),
            wait_seconds,
            what="visibility to list every task the run started",
            until=lambda started: wanted <= started,
            interval=0.2,
        )
    except AssertionError:
        missing = wanted - await started_since(client, task_queue, since)
        raise AssertionError(
            f"{len(missing)} of the {len(wanted)} tasks the run started are not listed by "
            f"Temporal's visibility after {wait_seconds} s: {sorted(missing)[:20]}"
        ) from None


async def stranded(
    client: Client, task_queue: str, since: datetime, settle_seconds: float
) -> list[Running]:
    """The workflows started since `since` still running and not waiting for input once the run's
    last turns had `settle_seconds` to end (empty as soon as none is left)."""

    async def unsettled() -> list[Running]:
        return [
            running
            for running in await running_since(client, task_queue, since)
            if not running.waiting_for_input()
        ]

    with contextlib.suppress(AssertionError):
        return await eventually(
            unsettled,
            settle_seconds,
            what="every running task to wait for input",
            until=lambda found: not found,
            interval=0.25,
        )
    return await unsettled()


async def queried_state(client: Client, workflow_id: str) -> str:
    """The task's state as its workflow answers the get_task query (or why it did not)."""
    try:
        record = await client.get_workflow_handle(workflow_id).query(TaskWorkflow.get_task)
    except Exception as err:
        return f"no answer to get_task ({type(err).__name__}: {err})"
    return str(record.status.state.value)


@dataclass(frozen=True, slots=True)
class ProcessId:
    """One process, told apart from a later one that reuses its pid by its start time (clock ticks
    after boot, /proc/<pid>/stat field 22)."""

    pid: int
    started: int
    command: str


@dataclass(frozen=True, slots=True)
class Servers:
    """Who serves Temporal and Redis: the process listening on each port (when it is visible here:
    a local server, not one in a container or elsewhere) and Redis's own run id (changed by any
    restart, wherever Redis runs)."""

    temporal: ProcessId | None
    redis: ProcessId | None
    redis_run_id: str


async def servers(temporal_address: str, redis_url: str, redis: Redis) -> Servers:
    info = await redis.info("server")
    return Servers(
        temporal=listening_process(_port(f"//{temporal_address}")),
        redis=listening_process(_port(redis_url)),
        redis_run_id=str(info["run_id"]),
    )


def _port(url: str) -> int | None:
    with contextlib.suppress(ValueError):
        return urlsplit(url).port
    return None


def listening_process(port: int | None) -> ProcessId | None:
    """The process with a TCP socket listening on `port` (Linux /proc; None when there is none to
    see, or no /proc)."""
    if port is None:
        return None
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    proc = Path("/proc")
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        return _process(int(entry.name))
    return None


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                # 0A: LISTEN; the port is the local address's last 4 hex digits.
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(inode)
    return inodes


def _process(pid: int) -> ProcessId:
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) is in parentheses and may hold spaces: count fields after it.
    after_name = stat.rsplit(")", 1)[1].split()
    command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    return ProcessId(pid, int(after_name[19]), os.path.basename(command))
