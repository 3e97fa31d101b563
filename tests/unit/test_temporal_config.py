"""The Temporal connection from Temporal's environment configuration (`config.temporal`): what each
variable and profile turns into, and the settings' address and namespace defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from config import temporal
from gateway.settings import GatewaySettings
from workers.settings import WorkerSettings

_VARIABLES = ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_PROFILE", "TEMPORAL_API_KEY")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No Temporal variable of the test run's, and no user's `temporal.toml`."""
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "absent.toml"))


def test_nothing_configured_is_plaintext_to_the_local_default() -> None:
    assert GatewaySettings().temporal_address == "127.0.0.1:7233"
    assert WorkerSettings().temporal_namespace == "default"
    connection = temporal.load("127.0.0.1:7233", "default")
    assert (connection.options, connection.tls) == ({}, False)


def test_an_api_key_alone_turns_tls_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_API_KEY", "secret-key")
    connection = temporal.load("ns.acct.tmprl.cloud:7233", "ns.acct")
    assert connection.options == {"api_key": "secret-key", "tls": True}
    assert connection.tls


def test_tls_variables_give_the_ca_client_pair_and_server_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, content in (("ca", b"CA"), ("cert", b"CERT"), ("key", b"KEY")):
        (tmp_path / name).write_bytes(content)
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", str(tmp_path / "ca"))
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(tmp_path / "cert"))
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(tmp_path / "key"))
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_NAME", "temporal.internal")
    connection = temporal.load("10.0.0.5:7233", "prod")
    assert connection.options == {
        "tls": TLSConfig(
            domain="temporal.internal",
            server_root_ca_cert=b"CA",
            client_cert=b"CERT",
            client_private_key=b"KEY",
        )
    }


def test_the_settings_default_to_the_named_profile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "temporal.toml"
    config.write_text(
        '[profile.cloud]\naddress = "ns.acct.tmprl.cloud:7233"\nnamespace = "ns.acct"\n'
        'api_key = "from-file"\n'
    )
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config))
    monkeypatch.setenv("TEMPORAL_PROFILE", "cloud")
    settings = GatewaySettings()
    assert (settings.temporal_address, settings.temporal_namespace) == (
        "ns.acct.tmprl.cloud:7233",
        "ns.acct",
    )
    connection = temporal.load(settings.temporal_address, settings.temporal_namespace)
    assert connection.options["api_key"] == "from-file"
    # A variable still wins over the profile.
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:7999")
    assert GatewaySettings().temporal_address == "127.0.0.1:7999"


def test_a_profile_that_does_not_exist_is_an_error_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEMPORAL_PROFILE", "nope")
    with pytest.raises(temporal.TemporalConfigError) as raised:
        temporal.load("127.0.0.1:7233", "default")
    assert str(raised.value) == "Temporal's environment configuration: Profile 'nope' not found"


async def test_a_refused_connection_names_the_address_and_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"not a certificate")
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", str(ca))
    monkeypatch.setenv("TEMPORAL_API_KEY", "secret-key")
    connection = temporal.load("127.0.0.1:1", "default")
    with pytest.raises(temporal.TemporalConfigError) as raised:
        await connection.connect()
    message = str(raised.value)
    settings = (
        f"TEMPORAL_CONFIG_FILE={tmp_path / 'absent.toml'}, TEMPORAL_API_KEY, "
        f"TEMPORAL_TLS_SERVER_CA_CERT_PATH={ca}"
    )
    prefix = f"cannot connect to Temporal at 127.0.0.1:1 over TLS; settings: {settings}: "
    assert message.startswith(prefix), message
    assert "secret-key" not in message
