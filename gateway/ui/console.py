"""What the web console needs to know at start: the agents (their public cards and endpoints), the
default one, where the Temporal UI is, and how to send a credential when auth is on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.access.auth import Authenticator
from gateway.cards import Cards
from gateway.settings import GatewaySettings

STATIC = Path(__file__).with_name("static")


def console_config(
    settings: GatewaySettings, cards: Cards, auth: Authenticator, default_agent: str
) -> dict[str, Any]:
    auth_header = auth.api_key_header
    return {
        "agents": [
            {"name": name, "endpoint": f"/agents/{name}", "card": card}
            for name, card in cards.public.items()
        ],
        "defaultAgent": default_agent,
        "temporalUiUrl": settings.temporal_ui_url,
        "temporalNamespace": settings.temporal_namespace,
        "auth": {
            "enabled": auth.enabled,
            "apiKeyHeader": auth_header,
            # The card's schemes as enforced: "apiKey" and/or "bearer" (a JWT).
            "schemes": sorted((auth.security() or ({}, []))[0]),
        },
    }
