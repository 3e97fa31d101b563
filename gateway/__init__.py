"""The HTTP process: JSON-RPC endpoint, agent card, handlers, Redis task store, Temporal calls."""

from gateway.app import create_app
from gateway.settings import GatewaySettings

__all__ = ["GatewaySettings", "create_app"]
