"""deploy/k8s stays in step with the real entry points and settings.

No cluster here: kustomization.yaml is resolved in Python (its resources and ConfigMap generators), and
every container running our image is checked against pyproject's console scripts, the CLIs' own
argument parsers, the settings models, the gateway's routes and the workflows' search attributes (see
tests/deploy_checks.py). Where `kubectl` is installed, its kustomize renders the same objects.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.settings import GatewaySettings
from tests.deploy_checks import (
    GATEWAY_SCRIPT,
    PLACEHOLDER_SECRET,
    ROOT,
    WORKER_SCRIPT,
    Command,
    check_env_names,
    check_registration_script,
    gateway_routes,
    gateway_settings,
    parse_command,
    read_agents,
    uvicorn_grace_seconds,
    worker_settings,
)
from workers.settings import WorkerSettings
from workers.worker import build_agent
from workflows.names import task_queue_for

K8S = ROOT / "deploy" / "k8s"
IMAGE = "a2a-temporal-gateway"
NOT_APPLIED = {"kustomization.yaml", "secret.example.yaml"}


def kustomization() -> dict[str, Any]:
    document = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert isinstance(document, dict)
    return document


def resources() -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for name in kustomization()["resources"]:
        path = K8S / name
        assert path.is_file(), f"kustomization.yaml lists {name}, which does not exist"
        objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return objects


def read_env_file(path: Path) -> dict[str, str]:
    """A kustomize env file: KEY=VALUE lines; blank lines and # comments skipped."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, equals, value = line.partition("=")
        assert equals, f"{path.name}: {line!r} is not KEY=VALUE"
        values[key.strip()] = value
    return values


def config_maps() -> dict[str, dict[str, str]]:
    """The generated ConfigMaps' data by name (kustomize adds a content hash to the names)."""
    generated: dict[str, dict[str, str]] = {}
    for generator in kustomization()["configMapGenerator"]:
        data: dict[str, str] = {}
        for env_file in generator.get("envs", []):
            data.update(read_env_file(K8S / env_file))
        for file in generator.get("files", []):
            key, _, source = str(file).rpartition("=")
            data[key or Path(source).name] = (K8S / source).read_text()
        for literal in generator.get("literals", []):
            key, _, value = str(literal).partition("=")
            data[key] = value
        generated[generator["name"]] = data
    return generated


def config_map_source(name: str, key: str) -> Path:
    """The repository file a generated ConfigMap's key comes from."""
    for generator in kustomization()["configMapGenerator"]:
        if generator["name"] == name:
            for file in generator.get("files", []):
                file_key, _, source = str(file).rpartition("=")
                if (file_key or Path(source).name) == key:
                    return K8S / source
    raise AssertionError(f"no ConfigMap {name} with a file {key}")


def objects_of(kind: str) -> list[dict[str, Any]]:
    return [o for o in resources() if o["kind"] == kind]


def one(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects_of(kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


@dataclass
class Container:
    workload: dict[str, Any]
    spec: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.workload['kind']} {self.workload['metadata']['name']}/{self.spec['name']}"

    @property
    def pod(self) -> dict[str, Any]:
        pod = self.workload["spec"]["template"]["spec"]
        assert isinstance(pod, dict)
        return pod

    @property
    def pod_labels(self) -> dict[str, str]:
        labels = self.workload["spec"]["template"]["metadata"]["labels"]
        assert isinstance(labels, dict)
        return labels

    def argv(self) -> list[str]:
        return [str(word) for word in self.spec.get("command", []) + self.spec.get("args", [])]

    def secret_refs(self) -> dict[str, dict[str, Any]]:
        return {
            item["name"]: item["valueFrom"]["secretKeyRef"]
            for item in self.spec.get("env", [])
            if "secretKeyRef" in item.get("valueFrom", {})
        }

    def env(self) -> dict[str, str]:
        """The environment the container starts with; a required secret is a placeholder, an
        optional one is taken as absent (the ConfigMap's value stands)."""
        values: dict[str, str] = {}
        maps = config_maps()
        for source in self.spec.get("envFrom", []):
            assert "configMapRef" in source, f"{self.where}: envFrom only from ConfigMaps"
            name = source["configMapRef"]["name"]
            assert name in maps, f"{self.where}: no generated ConfigMap {name}"
            values.update(maps[name])
        for item in self.spec.get("env", []):
            if "value" in item:
                values[item["name"]] = str(item["value"])
            elif not item["valueFrom"]["secretKeyRef"].get("optional", False):
                values[item["name"]] = PLACEHOLDER_SECRET
        return values

    def env_names(self) -> set[str]:
        return set(self.env()) | set(self.secret_refs())

    def port(self, port: int | str) -> int:
        """A probe's or Service's port: a number, or the name of one of the container's ports."""
        if isinstance(port, int):
            return port
        found = [p["containerPort"] for p in self.spec.get("ports", []) if p.get("name") == port]
        assert len(found) == 1, f"{self.where}: no port named {port}"
        return int(found[0])

    def probe(self, kind: str) -> tuple[int, str]:
        http = self.spec[kind]["httpGet"]
        return self.port(http["port"]), str(http["path"])

    def mounted_file(self, path: str) -> Path:
        """The repository file the container sees at `path` (from a ConfigMap volume)."""
        target = PurePosixPath(path)
        volumes = {v["name"]: v for v in self.pod.get("volumes", [])}
        for mount in self.spec.get("volumeMounts", []):
            if target.parent == PurePosixPath(mount["mountPath"]):
                config_map = volumes[mount["name"]].get("configMap")
                assert config_map, f"{self.where}: {mount['mountPath']} is not a ConfigMap"
                return config_map_source(config_map["name"], target.name)
        raise AssertionError(f"{self.where}: nothing is mounted at {target.parent}")


def our_containers() -> list[Container]:
    return [
        Container(workload, spec)
        for workload in resources()
        if workload["kind"] in {"Deployment", "Job"}
        for spec in workload["spec"]["template"]["spec"]["containers"]
        if str(spec["image"]).split(":")[0] == IMAGE
    ]


def commands(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Container, Command]]:
    return [(c, parse_command(c.argv(), monkeypatch, c.where)) for c in our_containers()]


def the_gateway(monkeypatch: pytest.MonkeyPatch) -> tuple[Container, GatewaySettings]:
    [(container, command)] = [
        (c, cmd) for c, cmd in commands(monkeypatch) if cmd.script == GATEWAY_SCRIPT
    ]
    env = container.env()
    config = container.mounted_file(env["A2A_CONFIG"])
    return container, gateway_settings(monkeypatch, env, command, config=config)


def the_workers(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Container, WorkerSettings]]:
    found = []
    for container, command in commands(monkeypatch):
        if command.script == WORKER_SCRIPT:
            env = container.env()
            config = container.mounted_file(env["A2A_CONFIG"])
            found.append((container, worker_settings(monkeypatch, env, command, config=config)))
    return found


def test_kustomization_applies_every_manifest_and_no_secret_values() -> None:
    listed = set(kustomization()["resources"])
    on_disk = {path.name for path in K8S.glob("*.yaml")} - NOT_APPLIED
    assert listed == on_disk, "every manifest is listed in kustomization.yaml"
    assert (
        kustomization()["namespace"]
        == one("Namespace", kustomization()["namespace"])["metadata"]["name"]
    )
    assert not objects_of("Secret"), "the manifests reference Secrets, they do not define them"
    [image] = kustomization()["images"]
    assert image["name"] == IMAGE
    assert {c.spec["image"] for c in our_containers()} == {IMAGE}
    kinds = {o["kind"] for o in resources()}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds


def test_containers_run_real_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    scripts = sorted(command.script for _, command in commands(monkeypatch))
    assert scripts.count(GATEWAY_SCRIPT) == 1
    assert scripts.count(WORKER_SCRIPT) >= 1
    for container, command in commands(monkeypatch):
        assert container.workload["kind"] == "Deployment", container.where
        check_env_names(command.script, container.env_names(), container.where)


def test_gateway_listens_where_it_is_probed_and_served(monkeypatch: pytest.MonkeyPatch) -> None:
    container, settings = the_gateway(monkeypatch)
    assert settings.host == "0.0.0.0"
    assert [p["containerPort"] for p in container.spec["ports"]] == [settings.port]
    routes = gateway_routes(settings)
    assert container.probe("readinessProbe") == (settings.port, "/readyz")
    assert container.probe("livenessProbe") == (settings.port, "/healthz")
    assert container.probe("startupProbe") == (settings.port, "/healthz")
    assert {"/readyz", "/healthz"} <= routes
    # Readiness waits up to the call timeout on Redis and Temporal before it answers 503.
    assert container.spec["readinessProbe"]["timeoutSeconds"] >= 1

    annotations = container.workload["spec"]["template"]["metadata"]["annotations"]
    assert settings.metrics
    assert "/metrics" in routes
    assert annotations["prometheus.io/port"] == str(settings.port)
    assert annotations["prometheus.io/path"] == "/metrics"

    pre_stop = container.spec["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    needed = float(pre_stop[1]) + uvicorn_grace_seconds()
    assert container.pod["terminationGracePeriodSeconds"] > needed
    assert urlsplit(settings.rpc_url()).scheme == "https", "A2A_GATEWAY_PUBLIC_URL: the public URL"


def test_gateway_service_reaches_every_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    container, settings = the_gateway(monkeypatch)
    service = one("Service", container.workload["metadata"]["name"])["spec"]
    assert service["selector"].items() <= container.pod_labels.items()
    assert service.get("sessionAffinity", "None") == "None", "no sticky sessions"
    [port] = service["ports"]
    assert container.port(port["targetPort"]) == settings.port
    assert port["port"] == 80


def test_gateway_scales_on_cpu_and_survives_disruptions(monkeypatch: pytest.MonkeyPatch) -> None:
    container, _ = the_gateway(monkeypatch)
    deployment = container.workload
    name = deployment["metadata"]["name"]
    hpa = one("HorizontalPodAutoscaler", name)
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", name)
    assert hpa["spec"]["minReplicas"] >= 2
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert container.spec["resources"]["requests"]["cpu"], "CPU utilization needs a CPU request"
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    assert deployment["spec"]["selector"]["matchLabels"].items() <= container.pod_labels.items()

    pdb = one("PodDisruptionBudget", name)
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["selector"]["matchLabels"].items() <= container.pod_labels.items()
    assert 1 <= pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_every_agent_has_a_worker_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    _, gateway = the_gateway(monkeypatch)
    agents = gateway.agents_config()
    assert gateway.config is not None
    assert read_agents(gateway.config) == agents
    served: dict[str, str] = {}
    for container, worker in the_workers(monkeypatch):
        assert worker.config == gateway.config, f"{container.where} reads another agents file"
        config = worker.agent_config()
        build_agent(worker.agent, config, anthropic_api_key=worker.api_key())
        assert worker.agent not in served, f"{container.where} and {served.get(worker.agent)}"
        served[worker.agent] = container.where
        routed = agents.agents[worker.agent].task_queue or task_queue_for(worker.agent)
        assert (config.task_queue or task_queue_for(worker.agent)) == routed
        if config.kind == "claude":
            ref = container.secret_refs()["ANTHROPIC_API_KEY"]
            assert not ref.get("optional", False), f"{container.where}: the key is required"
    assert set(served) == set(agents.agents), "every agent of the file needs a worker Deployment"


def test_workers_serve_metrics_and_stop_gracefully(monkeypatch: pytest.MonkeyPatch) -> None:
    for container, worker in the_workers(monkeypatch):
        assert worker.metrics_host == "0.0.0.0", container.where
        assert [p["containerPort"] for p in container.spec["ports"]] == [worker.metrics_port]
        annotations = container.workload["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(worker.metrics_port), container.where
        grace = container.pod["terminationGracePeriodSeconds"]
        assert grace > worker.shutdown_grace_seconds, container.where
        assert container.workload["spec"]["replicas"] >= 1


def test_gateway_and_workers_name_temporal_and_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    container, gateway = the_gateway(monkeypatch)
    addresses = [(container, gateway.temporal_address, gateway.redis_url)]
    addresses += [(c, w.temporal_address, w.redis_url) for c, w in the_workers(monkeypatch)]
    for container, temporal_address, redis_url in addresses:
        assert temporal_address == gateway.temporal_address, container.where
        assert redis_url == gateway.redis_url, container.where
        temporal = urlsplit(f"//{temporal_address}")
        assert temporal.hostname, temporal_address
        assert temporal.port, temporal_address
        assert urlsplit(redis_url).scheme in {"redis", "rediss"}, redis_url


def test_secrets_are_references_only() -> None:
    example_text = (K8S / "secret.example.yaml").read_text()
    example = yaml.safe_load(example_text)
    assert example["kind"] == "Secret"
    assert "secret.example.yaml" not in kustomization()["resources"]
    refs = [ref for container in our_containers() for ref in container.secret_refs().values()]
    assert refs
    for ref in refs:
        assert ref["name"] == example["metadata"]["name"]
        if ref.get("optional", False):
            assert ref["key"] in example_text, f"secret.example.yaml does not mention {ref['key']}"
        else:
            assert ref["key"] in example["stringData"], f"secret.example.yaml lacks {ref['key']}"


def test_pods_run_as_non_root() -> None:
    for workload in resources():
        if workload["kind"] not in {"Deployment", "Job"}:
            continue
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod.get("automountServiceAccountToken") is False
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, container["name"]
            assert security["readOnlyRootFilesystem"] is True, container["name"]


def test_job_registers_the_search_attributes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, gateway = the_gateway(monkeypatch)
    assert gateway.search_attributes
    [job] = objects_of("Job")
    [container] = job["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    assert command[:2] == ["sh", "-ec"]
    env = Container(job, container).env()
    check_registration_script(
        command[2], tmp_path, gateway.temporal_address, gateway.temporal_namespace, env=env
    )


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_the_same_objects() -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False
    )
    assert rendered.returncode == 0, rendered.stderr
    objects = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    generated = {name: data for name, data in config_maps().items()}
    maps = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "ConfigMap"}
    assert len(maps) == len(generated)
    for name, data in generated.items():
        [hashed] = [key for key in maps if key.rsplit("-", 1)[0] == name]
        assert maps[hashed] == data
    assert sorted(
        (o["kind"], o["metadata"]["name"]) for o in objects if o["kind"] != "ConfigMap"
    ) == (sorted((o["kind"], o["metadata"]["name"]) for o in resources()))
    namespace = kustomization()["namespace"]
    assert all(o["metadata"].get("namespace", namespace) == namespace for o in objects)
