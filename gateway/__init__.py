"""The HTTP process: JSON-RPC endpoint, agent card, handlers, Redis task store, Temporal calls."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.app import create_app
    from gateway.settings import GatewaySettings

__all__ = ["GatewaySettings", "create_app"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: `a2a-gateway send` and `task` need neither, and the app pulls in Temporal.
    if name == "create_app":
        from gateway.app import create_app

        return create_app
    if name == "GatewaySettings":
        from gateway.settings import GatewaySettings

        return GatewaySettings
    raise AttributeError(f"module 'gateway' has no attribute {name!r}")
