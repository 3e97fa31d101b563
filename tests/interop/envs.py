"""The environments of the official A2A clients that the interop tests drive, each made on first use and
kept under `.a2a/interop/` in the repository root (git-ignored) for later runs:

- `py-a2a-sdk-1.3.0/`: a venv (of the Python running the tests) with `a2a-sdk[http-server]==1.3.0`;
- `js-a2a-sdk-1.3.0/`: a folder with `npm install @a2a-js/sdk@1.3.0`.

An environment counts as made once its `.ready` file exists, written last; a half-made one (an install
that failed or was interrupted) is removed and made again. A lock file keeps two pytest processes from
making the same one at once. Failures raise `Unavailable`, which the fixtures turn into a skip (or a
failure under CI=true)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".a2a" / "interop"
HERE = Path(__file__).resolve().parent
PY_SDK = "a2a-sdk[http-server]==1.3.0"
JS_SDK = "@a2a-js/sdk@1.3.0"
INSTALL_TIMEOUT = 600
# One script run: every scenario, each operation of it bounded by the script itself.
RUN_TIMEOUT = 300


class Unavailable(Exception):
    """A client environment cannot be made here (no node, npm or pip, or the install failed)."""


@dataclass(frozen=True)
class ClientEnv:
    """How to run one client script: `command(base_url, scenario)`."""

    program: Path
    script: Path
    flags: tuple[str, ...] = ()

    def command(self, base_url: str, scenario: str) -> list[str]:
        return [str(self.program), *self.flags, str(self.script), base_url, scenario]

    async def run(self, base_url: str, scenario: str) -> dict[str, Any]:
        """Run the script and return the JSON object it printed; AssertionError with its output if it
        printed none. Async, so the session's in-process echo worker (on the test's event loop) goes
        on serving the tasks the script sends."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        process = await asyncio.create_subprocess_exec(
            *self.command(base_url, scenario),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            async with asyncio.timeout(RUN_TIMEOUT):
                out, err = await process.communicate()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
        lines = stdout.strip().splitlines()
        try:
            result: dict[str, Any] = json.loads(lines[-1])
        except (IndexError, ValueError):
            raise AssertionError(
                f"{self.script.name} {scenario} exited {process.returncode} without a JSON line:\n"
                f"stdout:\n{stdout}\nstderr:\n{stderr}"
            ) from None
        return result


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run(command: Sequence[str], what: str, cwd: Path | None = None) -> None:
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise Unavailable(f"{what} failed: {err}") from err
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-2000:]
        raise Unavailable(f"{what} failed (exit {done.returncode}): {tail}")


def _fresh(folder: Path) -> bool:
    """True when `folder` is made; otherwise clears what a failed attempt left."""
    if (folder / ".ready").exists():
        return True
    shutil.rmtree(folder, ignore_errors=True)
    return False


def python_env() -> ClientEnv:
    folder = CACHE / "py-a2a-sdk-1.3.0"
    python = folder / "bin" / "python"
    with _locked(folder.name):
        if not _fresh(folder):
            _run([sys.executable, "-m", "venv", str(folder)], "creating the a2a-sdk 1.3.0 venv")
            _run(
                [str(python), "-m", "pip", "install", "--quiet", PY_SDK],
                f"pip install {PY_SDK}",
            )
            (folder / ".ready").write_text(PY_SDK + "\n")
    # -I: the project's PYTHONPATH, user site and script folder stay out of the client's imports.
    return ClientEnv(python, HERE / "py_client.py", ("-I",))


def node_env() -> ClientEnv:
    folder = CACHE / "js-a2a-sdk-1.3.0"
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise Unavailable("node and npm are needed for the @a2a-js/sdk interop test")
    with _locked(folder.name):
        if not _fresh(folder):
            folder.mkdir(parents=True)
            package = {"name": "a2a-interop-js", "private": True, "type": "module"}
            (folder / "package.json").write_text(json.dumps(package, indent=2) + "\n")
            _run(
                [npm, "install", "--no-audit", "--no-fund", "--save-exact", JS_SDK],
                f"npm install {JS_SDK}",
                cwd=folder,
            )
            (folder / ".ready").write_text(JS_SDK + "\n")
        # Node resolves `@a2a-js/sdk` from the script's own folder: the script runs from beside
        # node_modules, copied anew each time so edits to it count.
        script = folder / "js_client.mjs"
        shutil.copyfile(HERE / "js_client.mjs", script)
    return ClientEnv(Path(node), script)
