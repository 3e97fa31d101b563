"""What tests/test_compose.py and tests/test_k8s.py check a deployment file against: the console scripts
of pyproject.toml, the CLIs' own argument parsers, the settings models, the standard OpenTelemetry
variables, the gateway's routes and the workflows' search attributes. Nothing here runs a container.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import stat
import subprocess
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import opentelemetry.sdk.environment_variables as otel_variables
import pytest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

import workers.cli
from config.agents import AgentsConfig
from config.telemetry import span_exporter
from config.temporal import CONNECTION_VARIABLES
from gateway.app import create_app
from gateway.cli import build_parser
from gateway.settings import GatewaySettings
from workers.settings import WorkerSettings
from workflows.names import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parent.parent
GATEWAY_SCRIPT = "a2a-gateway"
WORKER_SCRIPT = "a2a-worker"
SETTINGS: dict[str, type[BaseSettings]] = {
    GATEWAY_SCRIPT: GatewaySettings,
    WORKER_SCRIPT: WorkerSettings,
}
# Every variable the OpenTelemetry SDK and its OTLP exporter read (OTEL_SERVICE_NAME, OTEL_EXPORTER_...).
OTEL_VARIABLES = frozenset(
    value
    for name, value in vars(otel_variables).items()
    if name.startswith("OTEL_") and isinstance(value, str)
)
# Arguments a placeholder secret stands for when a file only references it.
PLACEHOLDER_SECRET = "placeholder-secret"


def console_scripts() -> dict[str, str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    scripts = pyproject["project"]["scripts"]
    assert isinstance(scripts, dict)
    return {str(name): str(target) for name, target in scripts.items()}


def env_names(model: type[BaseSettings]) -> set[str]:
    """The variable names a settings model reads: env_prefix + FIELD, or its validation aliases."""
    prefix = str(model.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for field_name, field in model.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(choice.upper() for choice in alias.choices if isinstance(choice, str))
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


def every_settings_variable() -> set[str]:
    return set().union(*(env_names(model) for model in SETTINGS.values())) | OTEL_VARIABLES


class _Parsed(Exception):
    def __init__(self, namespace: argparse.Namespace) -> None:
        super().__init__()
        self.namespace = namespace


def parse_worker_args(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> argparse.Namespace:
    """Parse with the parser `workers.cli.main` builds, stopping main right after parsing."""
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(
        self: argparse.ArgumentParser, args: Sequence[str] | None = None, namespace: None = None
    ) -> argparse.Namespace:
        raise _Parsed(original(self, args))

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
        with pytest.raises(_Parsed) as parsed:
            workers.cli.main(argv)
    return parsed.value.namespace


@dataclass
class Command:
    script: str
    args: argparse.Namespace

    def overrides(self) -> dict[str, Any]:
        """The settings the command line sets (the CLIs' own `overrides`)."""
        names = ("host", "port") if self.script == GATEWAY_SCRIPT else ("agent", "task_queue")
        return {name: value for name in names if (value := getattr(self.args, name)) is not None}


def parse_command(argv: list[str], monkeypatch: pytest.MonkeyPatch, where: str) -> Command:
    """`argv` parsed by the real parser of the console script it names; fails naming `where`."""
    assert argv, f"{where}: no command"
    scripts = console_scripts()
    script = argv[0]
    assert script in scripts, (
        f"{where}: {script!r} is not one of [project.scripts] {sorted(scripts)}"
    )
    try:
        if scripts[script] == "gateway.cli:main":
            args = build_parser().parse_args(argv[1:])
            assert args.command == "serve", (
                f"{where}: a container runs `serve`, not {args.command!r}"
            )
            return Command(GATEWAY_SCRIPT, args)
        assert scripts[script] == "workers.cli:main", (
            f"{where}: unknown entry point {scripts[script]}"
        )
        args = parse_worker_args(argv[1:], monkeypatch)
    except SystemExit:
        pytest.fail(f"{where}: {shlex.join(argv)!r} is refused by {script}'s argument parser")
    assert args.agent, f"{where}: a worker must name its agent with --agent"
    return Command(WORKER_SCRIPT, args)


def check_env_names(script: str, names: set[str], where: str) -> None:
    """Every variable set for the process is one its settings model (or OpenTelemetry, or Temporal's
    environment configuration) reads:
    pydantic-settings ignores unknown A2A_* names, so a renamed setting would go unnoticed."""
    unknown = names - env_names(SETTINGS[script]) - OTEL_VARIABLES - set(CONNECTION_VARIABLES)
    assert not unknown, f"{where}: {script} reads none of {sorted(unknown)}"


@contextmanager
def environment(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> Iterator[None]:
    with monkeypatch.context() as patch:
        for name in every_settings_variable():
            patch.delenv(name, raising=False)
        for key, value in env.items():
            patch.setenv(key, value)
        yield


def gateway_settings(
    monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str], command: Command, **extra: Any
) -> GatewaySettings:
    with environment(monkeypatch, env):
        return GatewaySettings(**command.overrides(), **extra)


def worker_settings(
    monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str], command: Command, **extra: Any
) -> WorkerSettings:
    with environment(monkeypatch, env):
        return WorkerSettings(**command.overrides(), **extra)


def check_tracing(env: Mapping[str, str], where: str) -> str:
    """The process exports spans over OTLP/HTTP as configured; returns the collector's host:port."""
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    assert endpoint, f"{where}: OTEL_EXPORTER_OTLP_ENDPOINT is not set"
    assert env.get("OTEL_SERVICE_NAME"), f"{where}: OTEL_SERVICE_NAME is not set"
    exporter = span_exporter(env)  # raises for what config/telemetry.py cannot do
    assert type(exporter).__name__ == "OTLPSpanExporter", where
    match = re.fullmatch(r"http://([^/:]+):(\d+)/?", endpoint)
    assert match, f"{where}: {endpoint} is not http://HOST:PORT"
    return f"{match.group(1)}:{match.group(2)}"


def gateway_routes(settings: GatewaySettings) -> set[str]:
    return {str(getattr(route, "path", "")) for route in create_app(settings).routes}


def uvicorn_grace_seconds() -> float:
    """How long `a2a-gateway serve` lets requests finish after SIGTERM (gateway/server.py)."""
    found = re.findall(r"timeout_graceful_shutdown=(\d+)", (ROOT / "gateway/server.py").read_text())
    assert len(found) == 1, "gateway/server.py: cannot find uvicorn's timeout_graceful_shutdown"
    return float(found[0])


def read_agents(path: Path) -> AgentsConfig:
    return AgentsConfig.from_toml(path.read_text(), str(path))


def expected_search_attributes() -> set[tuple[str, str]]:
    """(name, type as the temporal CLI spells it) of every search attribute the workflows set."""
    return {
        (key.name, "".join(part.capitalize() for part in key.indexed_value_type.name.split("_")))
        for key in SEARCH_ATTRIBUTES
    }


def registered_search_attributes(script: str) -> set[tuple[str, str]]:
    return set(re.findall(r"--name\s+(\S+)\s+--type\s+(\S+)", script))


_FAKE_TEMPORAL = """#!/bin/sh
echo "$*" >> "$TEMPORAL_STUB_LOG"
case "$*" in
  "operator namespace describe"*) exit 0 ;;
  "operator search-attribute list"*) printf '   Name   Type\\n%s\\n' "$TEMPORAL_STUB_EXISTING" ;;
  "operator search-attribute create"*) exit 0 ;;
  *) echo "unexpected: $*" >&2; exit 3 ;;
esac
"""


def run_registration(
    script: str, tmp_path: Path, existing: Sequence[str], env: Mapping[str, str] | None = None
) -> list[str]:
    """Run a search-attribute registration shell script against a stand-in `temporal` CLI whose
    namespace already has `existing`; returns the command lines it was given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "temporal"
    fake.write_text(_FAKE_TEMPORAL)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "temporal.log"
    log.write_text("")
    rows = "\n".join(f"   {name}   Keyword" for name in existing)
    run_env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "TEMPORAL_STUB_LOG": str(log),
        "TEMPORAL_STUB_EXISTING": rows,
        **(env or {}),
    }
    result = subprocess.run(
        ["sh", "-ec", script], env=run_env, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, f"the registration script failed: {result.stderr}"
    return log.read_text().splitlines()


def check_registration_script(
    script: str, tmp_path: Path, address: str, namespace: str, env: Mapping[str, str] | None = None
) -> None:
    """The script registers exactly the workflows' search attributes, on `address` and `namespace`,
    creates only the missing ones, and succeeds when all are there already."""
    assert registered_search_attributes(script) == expected_search_attributes()
    names = sorted(name for name, _ in expected_search_attributes())
    calls = run_registration(script, tmp_path, existing=names[:1], env=env)
    for call in calls:
        words = call.split()
        assert words[words.index("--address") + 1] == address, call
        assert words[words.index("--namespace") + 1] == namespace, call
    created = [
        call.split()[call.split().index("--name") + 1] for call in calls if " create " in call
    ]
    assert sorted(created) == names[1:]
    again = run_registration(script, tmp_path, existing=names, env=env)
    assert not [call for call in again if " create " in call]
