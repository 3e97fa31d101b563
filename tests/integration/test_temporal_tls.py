"""Temporal over TLS with client certificates (mTLS), configured as Temporal's own environment
configuration says (`TEMPORAL_TLS_*` variables, or a profile of a TOML file): `a2a-gateway serve` and
`a2a-worker` reach the dev server only through a TLS terminator (`tls_proxy`), and send, stream and
cancel work; a CA that did not sign the server's certificate, or no client certificate, fails the
start with a message naming the settings."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.devstack.processes import ManagedProcess
from tests.integration.sse import (
    GatewayProcess,
    data_frames,
    echo_message,
    gateway_process,
    read_stream,
    rpc_body,
)
from tests.integration.test_worker_crash import running_worker
from tests.integration.tls_proxy import (
    SERVER_NAME,
    Certificates,
    TlsProxy,
    make_certificates,
    tls_proxy,
)
from tests.waiting import eventually

QUEUE = "a2a-tls-echo"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def proxy(temporal_address: str, certificates: Certificates) -> Iterator[TlsProxy]:
    with tls_proxy(temporal_address, certificates) as running:
        yield running


def tls_env(certificates: Certificates) -> dict[str, str]:
    """mTLS in TEMPORAL_TLS_* variables, as the `temporal` CLI reads them."""
    return {
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(certificates.ca),
        "TEMPORAL_TLS_SERVER_NAME": SERVER_NAME,
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(certificates.client_cert),
        "TEMPORAL_TLS_CLIENT_KEY_PATH": str(certificates.client_key),
    }


def profile_file(directory: Path, certificates: Certificates, address: str) -> Path:
    """The same in a TOML profile named `tls`, as Temporal's environment configuration reads it."""
    path = directory / "temporal.toml"
    path.write_text(
        f"""[profile.tls]
address = "{address}"
namespace = "default"

[profile.tls.tls]
server_name = "{SERVER_NAME}"
server_ca_cert_path = "{certificates.ca}"
client_cert_path = "{certificates.client_cert}"
client_key_path = "{certificates.client_key}"
"""
    )
    return path


@pytest.fixture(scope="module")
def tls_worker(
    tmp_path_factory: pytest.TempPathFactory,
    proxy: TlsProxy,
    certificates: Certificates,
    redis_url: str,
) -> Iterator[ManagedProcess]:
    log = tmp_path_factory.mktemp("tls-worker") / "worker.log"
    with running_worker(QUEUE, proxy.address, redis_url, log, tls_env(certificates)) as worker:
        yield worker


@pytest.fixture(scope="module")
def tls_gateway(
    tmp_path_factory: pytest.TempPathFactory,
    proxy: TlsProxy,
    certificates: Certificates,
    redis_url: str,
    tls_worker: ManagedProcess,
) -> Iterator[GatewayProcess]:
    """A gateway whose Temporal connection is the `tls` profile of a TOML file (the worker's is
    variables)."""
    directory = tmp_path_factory.mktemp("tls-gateway")
    config = profile_file(directory, certificates, proxy.address)
    env = {"TEMPORAL_CONFIG_FILE": str(config), "TEMPORAL_PROFILE": "tls"}
    with gateway_process(
        directory,
        temporal_address=proxy.address,
        redis_url=redis_url,
        task_queue=QUEUE,
        env=env,
        name="tls",
    ) as gateway:
        yield gateway


async def test_send_stream_and_cancel_through_temporal_over_mtls(
    tls_gateway: GatewayProcess, proxy: TlsProxy, sse_client: httpx.AsyncClient
) -> None:
    url = tls_gateway.url
    sent = await sse_client.post(
        url, json=rpc_body("message/send", {"message": echo_message("hi")})
    )
    task = sent.json()["result"]
    assert (task["status"]["state"], task["artifacts"][0]["parts"]) == (
        "completed",
        [{"kind": "text", "text": "hi"}],
    )

    streamed = await read_stream(
        sse_client,
        "POST",
        url,
        json=rpc_body("message/stream", {"message": echo_message("abc", chunks=3, delay=0.05)}),
    )
    events = [frame.data["result"] for frame in data_frames(streamed)]
    assert [(e["kind"], e.get("status", {}).get("state")) for e in events] == [
        ("task", "submitted"),
        ("status-update", "working"),
        ("artifact-update", None),
        ("artifact-update", None),
        ("artifact-update", None),
        ("status-update", "completed"),
    ]
    assert "".join(e["artifact"]["parts"][0]["text"] for e in events[2:5]) == "abc"

    slow = echo_message("slow", chunks=4, delay=30)
    params = {"message": slow, "configuration": {"blocking": False}}
    started = (await sse_client.post(url, json=rpc_body("message/send", params))).json()
    task_id = started["result"]["id"]
    canceled = await sse_client.post(url, json=rpc_body("tasks/cancel", {"id": task_id}))
    assert canceled.json()["result"]["status"]["state"] == "canceled"

    async def ended_canceled() -> bool:
        got = await sse_client.post(url, json=rpc_body("tasks/get", {"id": task_id}))
        return bool(got.json()["result"]["status"]["state"] == "canceled")

    await eventually(ended_canceled, 20, what="the canceled task to stay canceled")
    # The gateway and the worker each connected through the proxy, over TLS.
    assert proxy.handshakes >= 2


def failed_start(command: list[str], env: dict[str, str], timeout: float = 60) -> str:
    """What a process that must fail to start printed; it must exit, and not with 0, within `timeout`."""
    done = subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode != 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def wrong_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certificates(tmp_path_factory.mktemp("other-ca"), "another CA").ca


def test_a_worker_trusting_another_ca_fails_naming_the_setting(
    proxy: TlsProxy, certificates: Certificates, wrong_ca: Path, redis_url: str
) -> None:
    env = {
        **tls_env(certificates),
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(wrong_ca),
        "TEMPORAL_ADDRESS": proxy.address,
        "REDIS_URL": redis_url,
        "A2A_WORKER_TASK_QUEUE": QUEUE,
        "A2A_WORKER_METRICS_PORT": "0",
    }
    output = failed_start([sys.executable, "-m", "workers", "--agent", "echo"], env)
    assert (
        f"a2a-worker: cannot connect to Temporal at {proxy.address} over TLS; settings: " in output
    )
    assert f"TEMPORAL_TLS_SERVER_CA_CERT_PATH={wrong_ca}" in output


def test_a_gateway_without_a_client_certificate_fails_naming_the_settings(
    proxy: TlsProxy, certificates: Certificates, redis_url: str
) -> None:
    env = {
        "TEMPORAL_ADDRESS": proxy.address,
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(certificates.ca),
        "TEMPORAL_TLS_SERVER_NAME": SERVER_NAME,
        "REDIS_URL": redis_url,
        "A2A_GATEWAY_PORT": "0",
    }
    output = failed_start([sys.executable, "-m", "gateway", "serve"], env)
    assert f"cannot connect to Temporal at {proxy.address} over TLS; settings: " in output
    assert f"TEMPORAL_TLS_SERVER_CA_CERT_PATH={certificates.ca}" in output
