"""docker-compose.yml, deploy/Dockerfile and deploy/otel-collector.yaml stay in step with the real entry
points and settings.

No Docker here: the files are parsed and checked against pyproject's console scripts, the CLIs' own
argument parsers, the settings models, the gateway's routes and the workflows' search attributes (see
tests/deploy_checks.py); the search-attribute script runs against a stand-in `temporal` CLI.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from temporalio.client import Client

import workers.cli
from config.agents import AgentsConfigError
from tests.deploy_checks import (
    GATEWAY_SCRIPT,
    ROOT,
    WORKER_SCRIPT,
    check_env_names,
    check_registration_script,
    check_tracing,
    console_scripts,
    gateway_routes,
    gateway_settings,
    parse_command,
    read_agents,
    uvicorn_grace_seconds,
    worker_settings,
)
from workers.worker import build_agent
from workflows.names import task_queue_for

COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
OUR_IMAGE = "a2a-temporal-gateway:local"
# The six nodes of the `redis-cluster` profile.
REDIS_NODES = [f"redis-node-{n}" for n in range(1, 7)]
SERVICES = {
    "postgresql",
    "temporal",
    "temporal-init",
    "temporal-ui",
    "redis",
    *REDIS_NODES,
    "redis-cluster-init",
    "gateway",
    "worker",
    "worker-claude",
    "otel-collector",
    "jaeger",
}
# What the shell gives `docker compose` to interpolate.
HOST_ENV = {"ANTHROPIC_API_KEY": "sk-ant-test"}

_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<braced>\w+)(?P<op>:?-)?(?P<default>[^}]*)\}|\$(?P<bare>[A-Za-z_]\w*)"
)


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution: $$ -> $, ${VAR}, ${VAR:-default}, ${VAR-default}, $VAR."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        if match.group("op") == ":-":
            return env.get(name) or match.group("default")
        if match.group("op") == "-":
            return env.get(name, match.group("default"))
        return env.get(name, "")

    return _VARIABLE.sub(substitute, value)


def load_compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    interpolated = interpolate(document, HOST_ENV if env is None else env)
    assert isinstance(interpolated, dict)
    return interpolated


def service(name: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    services = load_compose(env)["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    definition = services[name]
    assert isinstance(definition, dict)
    return definition


def our_services() -> list[str]:
    """The services running the image built from deploy/Dockerfile."""
    return [name for name, s in load_compose()["services"].items() if s.get("image") == OUR_IMAGE]


def command_of(name: str) -> list[str]:
    command = service(name).get("command")
    assert command, f"service {name!r} must set its command explicitly"
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


def environment_of(name: str, env: dict[str, str] | None = None) -> dict[str, str]:
    environment = service(name, env).get("environment") or {}
    if isinstance(environment, list):
        pairs = (str(item).partition("=") for item in environment)
        return {key: value for key, _, value in pairs}
    return {str(key): "" if value is None else str(value) for key, value in environment.items()}


def ports_of(name: str) -> dict[int, int | None]:
    """target -> published, for `[ip:][published:]target[/proto]` or the long syntax."""
    ports: dict[int, int | None] = {}
    for entry in service(name).get("ports", []):
        if isinstance(entry, dict):
            published = entry.get("published")
            ports[int(entry["target"])] = int(published) if published else None
            continue
        parts = str(entry).split("/")[0].split(":")
        ports[int(parts[-1])] = int(parts[-2]) if len(parts) > 1 else None
    return ports


def exposed(name: str) -> set[int]:
    return {int(str(port).split("/")[0]) for port in service(name).get("expose", [])}


def mounts(name: str) -> dict[str, Path]:
    """Bind mounts: container path -> host path (short syntax, relative to the repository)."""
    found: dict[str, Path] = {}
    for entry in service(name).get("volumes", []):
        source, _, rest = str(entry).partition(":")
        target = rest.split(":")[0]
        if source.startswith((".", "/")):
            found[target] = (ROOT / source).resolve()
    return found


def host_file(name: str, container_path: str) -> Path:
    path = mounts(name).get(container_path)
    assert path is not None, f"{name}: nothing is mounted at {container_path}"
    assert path.is_file(), f"{name}: {path} (mounted at {container_path}) does not exist"
    return path


def seconds(duration: str) -> float:
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert parts, f"not a duration: {duration}"
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration}"
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(number) * scale[unit] for number, unit in parts)


def probed_url(name: str) -> tuple[int, str]:
    """(port, path) of the URL a service's healthcheck fetches."""
    test = " ".join(str(word) for word in service(name)["healthcheck"]["test"])
    match = re.search(r"http://(?:127\.0\.0\.1|localhost):(\d+)(/[\w./-]*)", test)
    assert match, f"{name}: the healthcheck fetches no local URL: {test}"
    return int(match.group(1)), match.group(2)


def agents_file(name: str) -> Path:
    return host_file(name, environment_of(name)["A2A_CONFIG"])


def collector_config() -> dict[str, Any]:
    command = command_of("otel-collector")
    paths = [word.split("=", 1)[1] for word in command if word.startswith("--config=")]
    assert len(paths) == 1, f"otel-collector: one --config=PATH expected in {command}"
    config = yaml.safe_load(host_file("otel-collector", paths[0]).read_text())
    assert isinstance(config, dict)
    return config


def test_compose_declares_the_stack() -> None:
    assert set(load_compose()["services"]) == SERVICES
    assert sorted(our_services()) == ["gateway", "worker", "worker-claude"]


def test_our_services_run_real_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    scripts = {n: parse_command(command_of(n), monkeypatch, n).script for n in our_services()}
    assert scripts["gateway"] == GATEWAY_SCRIPT
    assert scripts["worker"] == scripts["worker-claude"] == WORKER_SCRIPT
    for name in our_services():
        build = service(name)["build"]
        dockerfile = ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
        assert dockerfile.resolve() == DOCKERFILE, name


def test_our_services_set_only_real_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in our_services():
        command = parse_command(command_of(name), monkeypatch, name)
        check_env_names(command.script, set(environment_of(name)), name)


def test_our_services_export_traces_to_the_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = collector_config()["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    receiver_port = receiver.rsplit(":", 1)[1]
    assert ports_of("otel-collector").get(int(receiver_port)), "publish the OTLP port for host runs"
    for name in our_services():
        target = check_tracing(environment_of(name), name)
        assert target == f"otel-collector:{receiver_port}", name
        assert "otel-collector" in service(name)["depends_on"], name


def test_gateway_listens_where_it_is_published_and_probed(monkeypatch: pytest.MonkeyPatch) -> None:
    command = parse_command(command_of("gateway"), monkeypatch, "gateway")
    environment = environment_of("gateway")
    settings = gateway_settings(monkeypatch, environment, command)
    assert settings.host == "0.0.0.0", (
        "inside a container the gateway must listen on all interfaces"
    )
    published = ports_of("gateway")
    assert settings.port in published, f"gateway port {settings.port} is not among {published}"
    assert urlsplit(settings.rpc_url()).port == published[settings.port], "A2A_GATEWAY_PUBLIC_URL"

    port, path = probed_url("gateway")
    assert (port, path) == (settings.port, "/readyz")
    config = agents_file("gateway")
    assert {"/readyz", "/healthz", "/metrics"} <= gateway_routes(
        gateway_settings(monkeypatch, environment, command, config=config)
    )
    assert settings.temporal_ui_url is not None
    ui = urlsplit(settings.temporal_ui_url)
    assert ui.port in ports_of("temporal-ui").values(), "the console's links go to the Temporal UI"
    # SIGTERM: uvicorn finishes requests for a while; Compose must wait longer before SIGKILL.
    assert seconds(service("gateway")["stop_grace_period"]) > uvicorn_grace_seconds()


def test_workers_serve_metrics_and_stop_gracefully(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("worker", "worker-claude"):
        command = parse_command(command_of(name), monkeypatch, name)
        settings = worker_settings(monkeypatch, environment_of(name), command)
        assert settings.metrics_host == "0.0.0.0", f"{name}: metrics must be reachable from others"
        assert settings.metrics_port in exposed(name), f"{name}: expose {settings.metrics_port}"
        assert probed_url(name) == (settings.metrics_port, "/metrics"), name
        grace = seconds(service(name)["stop_grace_period"])
        assert grace > settings.shutdown_grace_seconds, name


def test_every_agent_has_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    path = agents_file("gateway")
    gateway_command = parse_command(command_of("gateway"), monkeypatch, "gateway")
    gateway = gateway_settings(monkeypatch, environment_of("gateway"), gateway_command, config=path)
    agents = gateway.agents_config()
    assert agents.default_agent in agents.agents
    served: dict[str, str] = {}
    for name in ("worker", "worker-claude"):
        assert agents_file(name) == path, f"{name} must read the gateway's agents file"
        command = parse_command(command_of(name), monkeypatch, name)
        worker = worker_settings(monkeypatch, environment_of(name), command, config=path)
        config = worker.agent_config()  # raises for an agent the file does not have
        build_agent(worker.agent, config, anthropic_api_key=worker.api_key())
        assert worker.agent not in served, f"{name} and {served.get(worker.agent)} serve one agent"
        served[worker.agent] = name
        # The gateway routes the agent's tasks to the queue this worker polls.
        routed = agents.agents[worker.agent].task_queue or task_queue_for(worker.agent)
        assert (config.task_queue or task_queue_for(worker.agent)) == routed, name
    assert set(served) == set(agents.agents), "every agent of the file needs a worker service"
    assert read_agents(path) == agents


def test_claude_worker_runs_with_its_profile_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    claude = service("worker-claude")
    assert claude.get("profiles") == ["claude"]
    optional = {"worker-claude", "redis-cluster-init", *REDIS_NODES}
    assert all(not service(name).get("profiles") for name in SERVICES - optional)
    assert environment_of("worker-claude")["ANTHROPIC_API_KEY"] == HOST_ENV["ANTHROPIC_API_KEY"]
    # Without a key in the shell, `docker compose up` still works: the profile is off. With the profile
    # on, the worker exits saying what is missing and, restarted like every worker after a crash or a
    # reboot, says it again until the key is set (as the file's comment tells).
    assert environment_of("worker-claude", env={})["ANTHROPIC_API_KEY"] == ""
    assert claude["restart"] == service("worker")["restart"] == "unless-stopped"


class _Connecting(Exception):
    pass


async def test_claude_worker_gets_past_its_agent_with_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`a2a-worker --agent claude` with the service's environment builds its agent and connects."""
    command = parse_command(command_of("worker-claude"), monkeypatch, "worker-claude")
    path = agents_file("worker-claude")

    async def connect(*args: Any, **kwargs: Any) -> Client:
        raise _Connecting

    monkeypatch.setattr(Client, "connect", connect)
    for host_env, reached in ((HOST_ENV, _Connecting), ({}, AgentsConfigError)):
        environment = environment_of("worker-claude", env=host_env)
        settings = worker_settings(monkeypatch, environment, command, config=path, metrics_port=0)
        with pytest.raises(reached, match="ANTHROPIC_API_KEY" if host_env == {} else None):
            await workers.cli.serve(settings)


def test_gateway_and_workers_reach_temporal_and_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in our_services():
        command = parse_command(command_of(name), monkeypatch, name)
        environment = environment_of(name)
        settings = (
            gateway_settings(monkeypatch, environment, command)
            if command.script == GATEWAY_SCRIPT
            else worker_settings(monkeypatch, environment, command)
        )
        temporal = urlsplit(f"//{settings.temporal_address}")
        assert (temporal.hostname, temporal.port) == ("temporal", 7233), name
        assert (
            settings.temporal_namespace == service("temporal")["environment"]["DEFAULT_NAMESPACE"]
        )
        redis = urlsplit(settings.redis_url)
        assert (redis.scheme, redis.hostname, redis.port) == ("redis", "redis", 6379), name


def test_the_redis_cluster_profile_forms_a_cluster_our_services_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {**HOST_ENV, "A2A_REDIS_CLUSTER": "true", "REDIS_URL": "redis://redis-node-1:6379/0"}
    nodes = REDIS_NODES
    for name in nodes:
        node = service(name, env)
        assert node["profiles"] == ["redis-cluster"]
        command = node["command"]
        assert command[:3] == ["redis-server", "--cluster-enabled", "yes"], name
        assert "test" in node["healthcheck"], name
    init = service("redis-cluster-init", env)
    assert init["profiles"] == ["redis-cluster"]
    assert sorted(init["depends_on"]) == nodes
    script = init["command"][-1]
    assert "redis-cli --cluster create $nodes --cluster-replicas 1 --cluster-yes" in script
    assert "for n in 1 2 3 4 5 6" in script
    for name in our_services():
        command = parse_command(command_of(name), monkeypatch, name)
        environment = environment_of(name, env)
        settings = (
            gateway_settings(monkeypatch, environment, command)
            if command.script == GATEWAY_SCRIPT
            else worker_settings(monkeypatch, environment, command)
        )
        assert settings.redis_cluster, name
        assert urlsplit(settings.redis_url).hostname in nodes, name
        rule = service(name, env)["depends_on"]["redis-cluster-init"]
        assert rule == {"condition": "service_completed_successfully", "required": False}
    # Without the profile's variables, the one Redis.
    for name in our_services():
        assert environment_of(name)["A2A_REDIS_CLUSTER"] == "false", name


def test_temporal_persists_in_postgresql() -> None:
    temporal = environment_of("temporal")
    postgres = environment_of("postgresql")
    assert temporal["DB"] == "postgres12"
    assert temporal["POSTGRES_SEEDS"] == "postgresql"
    assert temporal["DB_PORT"] == "5432"
    assert temporal["POSTGRES_USER"] == postgres["POSTGRES_USER"]
    assert temporal["POSTGRES_PWD"] == postgres["POSTGRES_PASSWORD"]
    assert any(target == "/var/lib/postgresql/data" for target in _volume_targets("postgresql"))
    dynamic = yaml.safe_load(
        host_file("temporal", temporal["DYNAMIC_CONFIG_FILE_PATH"]).read_text()
    )
    # message/send is an Update-with-Start; follow-ups and cancels are updates.
    for key in ("frontend.enableUpdateWorkflowExecution", "frontend.enableExecuteMultiOperation"):
        assert dynamic[key] == [{"value": True}], key
    kind, probe = service("temporal")["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    assert re.match(r"temporal operator cluster health --address temporal:7233 \| grep ", probe)
    assert ports_of("temporal").get(7233), "publish the frontend for host tools"


def _volume_targets(name: str) -> list[str]:
    return [str(entry).split(":")[1] for entry in service(name).get("volumes", [])]


def test_temporal_init_registers_the_search_attributes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = command_of("temporal-init")
    assert command[:2] == ["sh", "-ec"]
    gateway_command = parse_command(command_of("gateway"), monkeypatch, "gateway")
    gateway = gateway_settings(monkeypatch, environment_of("gateway"), gateway_command)
    assert gateway.search_attributes
    check_registration_script(
        command[2], tmp_path, gateway.temporal_address, gateway.temporal_namespace
    )
    assert service("temporal-init").get("restart") == "no"


def test_temporal_ui_reaches_temporal() -> None:
    assert environment_of("temporal-ui")["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert 8080 in ports_of("temporal-ui")


def test_dependencies_wait_for_what_they_need() -> None:
    services = load_compose()["services"]
    for name, definition in services.items():
        for dependency, rule in (definition.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on an unknown {dependency}"
            condition = rule.get("condition")
            if condition == "service_healthy":
                assert "test" in services[dependency].get("healthcheck", {}), dependency
            elif condition == "service_completed_successfully":
                assert services[dependency].get("restart") == "no", dependency
            else:
                assert condition == "service_started", f"{name} -> {dependency}: {condition}"
    for name in our_services():
        depends_on = service(name)["depends_on"]
        assert depends_on["redis"]["condition"] == "service_healthy", name
        assert depends_on["temporal"]["condition"] == "service_healthy", name
        assert depends_on["temporal-init"]["condition"] == "service_completed_successfully", name
    assert service("temporal")["depends_on"]["postgresql"]["condition"] == "service_healthy"
    assert service("temporal-init")["depends_on"]["temporal"]["condition"] == "service_healthy"
    assert service("temporal-ui")["depends_on"]["temporal"]["condition"] == "service_healthy"


def test_collector_sends_traces_to_jaeger_and_scrapes_every_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = collector_config()
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces"]["receivers"] == ["otlp"]
    [exporter] = pipelines["traces"]["exporters"]
    endpoint = config["exporters"][exporter]["endpoint"]
    assert exporter.split("/")[0] == "otlp"
    assert endpoint == "jaeger:4317"
    assert 4317 in exposed("jaeger")
    assert 16686 in ports_of("jaeger")

    [prometheus] = pipelines["metrics"]["receivers"]
    jobs = config["receivers"][prometheus]["config"]["scrape_configs"]
    scraped = {
        (name, sd["port"], job.get("metrics_path", "/metrics"))
        for job in jobs
        for sd in job["dns_sd_configs"]
        for name in sd["names"]
    }
    expected = set()
    for name in our_services():
        command = parse_command(command_of(name), monkeypatch, name)
        if command.script == GATEWAY_SCRIPT:
            settings = gateway_settings(monkeypatch, environment_of(name), command)
            assert settings.metrics, "the gateway must serve /metrics"
            expected.add((name, settings.port, "/metrics"))
        else:
            worker = worker_settings(monkeypatch, environment_of(name), command)
            expected.add((name, worker.metrics_port, "/metrics"))
    assert scraped == expected


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions, (INSTRUCTION, arguments), one list per stage."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def test_dockerfile_builds_one_slim_non_root_image_for_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "build in one stage, copy the result into a clean one"
    final = stages[-1]
    users = [arguments for instruction, arguments in final if instruction == "USER"]
    assert users, "the image must switch to a non-root user"
    assert users[-1].split(":")[0] not in {"root", "0"}, "the image must not run as root"
    cmd = [arguments for instruction, arguments in final if instruction == "CMD"]
    assert cmd, "deploy/Dockerfile needs an exec-form CMD"
    default = json.loads(cmd[-1])
    assert default == command_of("gateway")
    assert parse_command(default, monkeypatch, "Dockerfile CMD").script == GATEWAY_SCRIPT
    assert default[0] in console_scripts()
    assert not [i for i, _ in final if i == "ENTRYPOINT"], (
        "compose and k8s commands name the script"
    )

    env = dict(
        pair.split("=", 1)
        for instruction, arguments in final
        if instruction == "ENV"
        for pair in shlex.split(arguments)
    )
    settings_env = {key: value for key, value in env.items() if key.startswith("A2A_")}
    check_env_names(
        GATEWAY_SCRIPT, {k for k in settings_env if k.startswith("A2A_GATEWAY_")}, "ENV"
    )
    check_env_names(WORKER_SCRIPT, {k for k in settings_env if k.startswith("A2A_WORKER_")}, "ENV")
    assert settings_env == {"A2A_GATEWAY_HOST": "0.0.0.0", "A2A_WORKER_METRICS_HOST": "0.0.0.0"}

    exposed_ports = {
        int(port) for i, arguments in final if i == "EXPOSE" for port in arguments.split()
    }
    gateway = parse_command(command_of("gateway"), monkeypatch, "gateway")
    worker = parse_command(command_of("worker"), monkeypatch, "worker")
    gateway_port = gateway_settings(monkeypatch, environment_of("gateway"), gateway).port
    metrics_port = worker_settings(monkeypatch, environment_of("worker"), worker).metrics_port
    assert exposed_ports == {gateway_port, metrics_port}

    build = "\n".join(arguments for stage in stages[:-1] for _, arguments in stage)
    assert "[test]" not in build, "the image carries no test dependencies"
    allowed = {
        line[1:].strip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for stage in stages:
        for instruction, arguments in stage:
            if instruction == "COPY" and not arguments.startswith("--from"):
                *sources, _ = arguments.split()
                for source in sources:
                    assert (ROOT / source).exists(), source
                    assert source.strip("./") in allowed, f".dockerignore keeps out {source}"
