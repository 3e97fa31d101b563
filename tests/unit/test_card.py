from __future__ import annotations

import pytest

from gateway.cards import accepts_output, build_agent_card
from gateway.settings import GatewaySettings
from tests.a2a_schema import assert_valid


def test_agent_card_from_settings_is_valid_and_truthful() -> None:
    settings = GatewaySettings(
        host="127.0.0.1", port=8123, agent_name="Echo", agent_version="1.2.3"
    )
    card = build_agent_card(
        "echo", settings.agents_config().agents["echo"], settings.rpc_url()
    ).to_wire()
    assert_valid(card, "AgentCard")
    assert card == {
        "protocolVersion": "0.2.5",
        "name": "Echo",
        "description": "Replies with the text it receives, as a streamed artifact.",
        "url": "http://127.0.0.1:8123/",
        "preferredTransport": "JSONRPC",
        "version": "1.2.3",
        "capabilities": {
            "streaming": True,
            "pushNotifications": True,
            "stateTransitionHistory": False,
        },
        "defaultInputModes": ["text/plain", "application/json"],
        "defaultOutputModes": ["text/plain"],
        "skills": [
            {
                "id": "echo",
                "name": "Echo",
                "description": "Replies with the text of your message as an artifact.",
                "tags": ["echo", "test"],
                "examples": ["hello"],
            }
        ],
    }


def test_agent_card_public_url_wins() -> None:
    assert GatewaySettings(public_url="https://agents.example.com/a2a").rpc_url() == (
        "https://agents.example.com/a2a"
    )


@pytest.mark.parametrize(
    ("accepted", "ok"),
    [
        (["text/plain"], True),
        (["application/json", "text/*"], True),
        (["*/*"], True),
        (["text"], True),
        (["TEXT/PLAIN"], True),
        (["application/json"], False),
        (["image/png", "audio/*"], False),
    ],
)
def test_accepts_output_matches_types_wildcards_and_major_types(
    accepted: list[str], ok: bool
) -> None:
    assert accepts_output(accepted, ["text/plain"]) is ok
