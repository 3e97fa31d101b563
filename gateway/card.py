"""The agent card (A2A 0.2.5 §5), built from settings."""

from __future__ import annotations

from protocol import AgentCapabilities, AgentCard, AgentConfig, AgentSkill

OUTPUT_MODES = ["text/plain"]
INPUT_MODES = ["text/plain", "application/json"]

# The skills a card lists when the agents file gives none, by agent kind.
DEFAULT_SKILLS = {
    "echo": [
        AgentSkill(
            id="echo",
            name="Echo",
            description="Replies with the text of your message as an artifact.",
            tags=["echo", "test"],
            examples=["hello"],
        )
    ],
    "claude": [
        AgentSkill(
            id="chat",
            name="Chat",
            description="Answers in conversation, streaming its reply as it is written.",
            tags=["chat", "llm"],
        )
    ],
}


def build_agent_card(name: str, agent: AgentConfig, url: str) -> AgentCard:
    """The card of agent `name`, whose JSON-RPC endpoint is `url`."""
    return AgentCard(
        name=agent.name or name,
        description=agent.description,
        url=url,
        version=agent.version,
        # Only what works today: push notifications come with a later release.
        capabilities=AgentCapabilities(
            streaming=True, pushNotifications=False, stateTransitionHistory=False
        ),
        defaultInputModes=INPUT_MODES,
        defaultOutputModes=OUTPUT_MODES,
        skills=agent.skills or DEFAULT_SKILLS[agent.kind],
    )


def accepts_output(accepted: list[str], produced: list[str]) -> bool:
    """Whether a client's `acceptedOutputModes` admits one of the modes the agent produces.

    Matches exact MIME types, wildcards (`*/*`, `text/*`) and bare major types (`text`), which
    several A2A samples send.
    """
    for mode in accepted:
        wanted = mode.strip().lower()
        for offered in produced:
            major = offered.split("/", 1)[0]
            if wanted in (offered, "*/*", "*", f"{major}/*", major):
                return True
    return False
