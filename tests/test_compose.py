"""docker-compose.yml and deploy/Dockerfile stay in step with the real entry points and settings.

No Docker here: the file is parsed and checked against pyproject's console scripts, the CLIs' own
argument parsers, the settings models and the workflows' search attributes.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

import workers.cli
from gateway.cli import build_parser
from gateway.settings import GatewaySettings
from workers.settings import WorkerSettings
from workers.worker import build_agent
from workflows import SEARCH_ATTRIBUTES, task_queue_for

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
SERVICES = {"temporal", "redis", "gateway", "worker"}
SETTINGS: dict[str, type[BaseSettings]] = {"gateway": GatewaySettings, "worker": WorkerSettings}


def load_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


def service(name: str) -> dict[str, Any]:
    services = load_compose()["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    definition = services[name]
    assert isinstance(definition, dict)
    return definition


def command_of(name: str) -> list[str]:
    command = service(name).get("command")
    assert command, f"service {name!r} must set its command explicitly"
    words = shlex.split(command) if isinstance(command, str) else [str(word) for word in command]
    return words


def environment_of(name: str) -> dict[str, str]:
    environment = service(name).get("environment") or {}
    if isinstance(environment, list):
        pairs = (str(item).partition("=") for item in environment)
        return {key: value for key, _, value in pairs}
    return {str(key): "" if value is None else str(value) for key, value in environment.items()}


def container_ports(name: str) -> list[tuple[int | None, int]]:
    """(published, target) for each port; short syntax `[ip:][published:]target[/proto]` or long."""
    ports: list[tuple[int | None, int]] = []
    for entry in service(name).get("ports", []):
        if isinstance(entry, dict):
            published = entry.get("published")
            ports.append((int(published) if published else None, int(entry["target"])))
            continue
        parts = str(entry).split("/")[0].split(":")
        ports.append((int(parts[-2]) if len(parts) > 1 else None, int(parts[-1])))
    return ports


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


def console_scripts() -> dict[str, str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    scripts = pyproject["project"]["scripts"]
    assert isinstance(scripts, dict)
    return {str(name): str(target) for name, target in scripts.items()}


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

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    with pytest.raises(_Parsed) as parsed:
        workers.cli.main(argv)
    return parsed.value.namespace


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The process environment without any variable the settings models read."""
    for model in SETTINGS.values():
        for name in env_names(model):
            monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_compose_declares_exactly_the_stack() -> None:
    assert set(load_compose()["services"]) == SERVICES


def test_compose_services_run_real_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    scripts = console_scripts()
    for name in ("gateway", "worker"):
        script = command_of(name)[0]
        assert script in scripts, (
            f"{name}: {script!r} is not in [project.scripts] {sorted(scripts)}"
        )
    assert scripts[command_of("gateway")[0]] == "gateway.cli:main"
    assert scripts[command_of("worker")[0]] == "workers.cli:main"

    gateway_args = build_parser().parse_args(command_of("gateway")[1:])
    assert gateway_args.command == "serve"

    worker_args = parse_worker_args(command_of("worker")[1:], monkeypatch)
    assert worker_args.agent, "the worker command must name its agent with --agent"


def test_dockerfile_default_command_is_the_gateway() -> None:
    for name in ("gateway", "worker"):
        build = service(name)["build"]
        context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
        dockerfile = (
            "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        )
        assert (context / dockerfile).is_file(), f"{name}: {context / dockerfile} does not exist"

    text = (ROOT / "deploy" / "Dockerfile").read_text()
    cmd = re.findall(r"^CMD\s+(\[.*\])\s*$", text, flags=re.MULTILINE)
    assert cmd, "deploy/Dockerfile needs an exec-form CMD"
    assert json.loads(cmd[-1]) == command_of("gateway")
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users, "deploy/Dockerfile must switch to a non-root user"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_compose_environment_names_are_read_by_settings() -> None:
    for name, model in SETTINGS.items():
        unknown = set(environment_of(name)) - env_names(model)
        assert not unknown, f"{name} sets variables {model.__name__} never reads: {sorted(unknown)}"


def test_compose_environment_is_valid_settings(clean_env: pytest.MonkeyPatch) -> None:
    for name, model in SETTINGS.items():
        with clean_env.context() as env:
            for key, value in environment_of(name).items():
                env.setenv(key, value)
            settings = model()
        values = settings.model_dump()
        # Both must reach the other services by their compose names.
        assert urlsplit(f"//{values['temporal_address']}").hostname == "temporal", name
        assert urlsplit(values["redis_url"]).hostname == "redis", name


def test_gateway_port_matches_published_port_and_healthcheck(clean_env: pytest.MonkeyPatch) -> None:
    environment = environment_of("gateway")
    with clean_env.context() as env:
        for key, value in environment.items():
            env.setenv(key, value)
        settings = GatewaySettings()
    args = build_parser().parse_args(command_of("gateway")[1:])
    port = args.port if args.port is not None else settings.port
    host = args.host if args.host is not None else settings.host
    assert port == int(environment["A2A_GATEWAY_PORT"])
    assert host == "0.0.0.0", "inside a container the gateway must listen on all interfaces"

    published = {target: published for published, target in container_ports("gateway")}
    assert port in published, f"gateway port {port} is not among {container_ports('gateway')}"
    public = urlsplit(settings.rpc_url())
    assert public.port == published[port], "A2A_GATEWAY_PUBLIC_URL must use the published port"

    healthcheck = " ".join(str(word) for word in service("gateway")["healthcheck"]["test"])
    probe = re.search(r"http://[^/'\"\s]+:(\d+)(/[\w./-]*)", healthcheck)
    assert probe, f"the gateway healthcheck fetches no URL: {healthcheck}"
    assert int(probe.group(1)) == port
    assert probe.group(2) == "/readyz"


def test_gateway_and_worker_share_agent_and_task_queue(
    clean_env: pytest.MonkeyPatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker_args = parse_worker_args(command_of("worker")[1:], monkeypatch)
    with clean_env.context() as env:
        for key, value in environment_of("worker").items():
            env.setenv(key, value)
        overrides = {k: v for k in ("agent", "task_queue") if (v := getattr(worker_args, k))}
        worker = WorkerSettings(**overrides)
    with clean_env.context() as env:
        for key, value in environment_of("gateway").items():
            env.setenv(key, value)
        gateway = GatewaySettings()
    build_agent(worker.agent, worker.agent_config())  # raises for an agent it cannot build
    assert gateway.agent == worker.agent
    worker_queue = worker.task_queue or task_queue_for(worker.agent)
    assert (gateway.task_queue or task_queue_for(gateway.agent)) == worker_queue


def test_temporal_registers_the_workflow_search_attributes() -> None:
    command = command_of("temporal")
    assert command[:2] == ["server", "start-dev"]
    registered = {
        command[i + 1] for i, word in enumerate(command[:-1]) if word == "--search-attribute"
    }
    expected = {
        f"{key.name}={''.join(p.capitalize() for p in key.indexed_value_type.name.split('_'))}"
        for key in SEARCH_ATTRIBUTES
    }
    assert registered == expected
    assert "--db-filename" in command, "without --db-filename the dev server forgets everything"
    assert {target for _, target in container_ports("temporal")} >= {7233, 8233}


def test_dependencies_wait_for_healthchecks() -> None:
    for name in ("gateway", "worker"):
        depends_on = service(name).get("depends_on")
        assert isinstance(depends_on, dict), f"{name} must wait for its dependencies to be healthy"
        assert set(depends_on) == {"temporal", "redis"}
        for dependency, condition in depends_on.items():
            assert condition.get("condition") == "service_healthy"
            assert "test" in service(dependency).get("healthcheck", {}), dependency
