"""The Temporal connection of the gateway, the workers and `a2a-gateway dev`, from Temporal's own
environment configuration (`temporalio.envconfig`): `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`,
`TEMPORAL_API_KEY`, `TEMPORAL_TLS`, `TEMPORAL_TLS_*` (server CA, client certificate and key, server
name), `TEMPORAL_GRPC_META_*`, and `TEMPORAL_PROFILE` naming a profile of the TOML file at
`TEMPORAL_CONFIG_FILE` (default `~/.config/temporalio/temporal.toml`), as the `temporal` CLI and
every Temporal SDK read them. An API key alone turns TLS on (Temporal Cloud).

The address and namespace are also settings of each process (`TEMPORAL_ADDRESS` and
`TEMPORAL_NAMESPACE` again, or the process's own `A2A_GATEWAY_` / `A2A_WORKER_` ones): they default to
the profile's, else `127.0.0.1:7233` and `default`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client
from temporalio.envconfig import ClientConfigProfile, ClientConnectConfig

DEFAULT_ADDRESS = "127.0.0.1:7233"
DEFAULT_NAMESPACE = "default"
# The variables that shape the connection beyond its address, named in a failed connection's message.
CONNECTION_VARIABLES = (
    "TEMPORAL_PROFILE",
    "TEMPORAL_CONFIG_FILE",
    "TEMPORAL_API_KEY",
    "TEMPORAL_TLS",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "TEMPORAL_TLS_SERVER_CA_CERT_DATA",
    "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_CERT_DATA",
    "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_DATA",
    "TEMPORAL_TLS_SERVER_NAME",
    "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION",
)
# Values named but not quoted in a message: a secret, and certificates or keys given inline.
_UNQUOTED = ("TEMPORAL_API_KEY", "_DATA")


class TemporalConfigError(Exception):
    """Temporal's environment configuration cannot be read, or the connection it describes fails."""


@dataclass(frozen=True)
class TemporalConnection:
    """Where and how to reach Temporal: `Client.connect`'s arguments from the environment."""

    address: str
    namespace: str
    options: ClientConnectConfig

    @property
    def tls(self) -> bool:
        return self.options.get("tls", False) is not False

    async def connect(self, **kwargs: Any) -> Client:
        """A client (`kwargs`: `Client.connect`'s others: data converter, interceptors, runtime); a
        failure names the address and the settings that shaped the connection."""
        options: dict[str, Any] = {**self.options, **kwargs}
        options.pop("target_host", None)
        options["namespace"] = self.namespace
        try:
            return await Client.connect(self.address, **options)
        except RuntimeError as err:
            raise TemporalConfigError(self._failure(err)) from err

    def _failure(self, err: RuntimeError) -> str:
        settings = [
            name if name.endswith(_UNQUOTED) else f"{name}={value}"
            for name in CONNECTION_VARIABLES
            if (value := os.environ.get(name))
        ]
        how = "over TLS" if self.tls else "without TLS (set TEMPORAL_TLS=true for TLS)"
        shaped = f"; settings: {', '.join(settings)}" if settings else ""
        return f"cannot connect to Temporal at {self.address} {how}{shaped}: {err}"


def profile_value(name: str) -> str | None:
    """`address` or `namespace` of the environment's profile (variables over the TOML file), for the
    settings' defaults; None when it has none or the configuration cannot be read (`load` then says
    why)."""
    try:
        profile = ClientConfigProfile.load()
    except Exception:
        return None
    value: str | None = getattr(profile, name)
    return value


def load(address: str, namespace: str, env: Mapping[str, str] | None = None) -> TemporalConnection:
    """The connection to Temporal at `address` in `namespace` (a process's settings), with TLS, API
    key and gRPC metadata from the environment configuration."""
    try:
        options = ClientConfigProfile.load(override_env_vars=env).to_client_connect_config()
    except Exception as err:
        raise TemporalConfigError(f"Temporal's environment configuration: {err}") from err
    return TemporalConnection(address, namespace, options)
