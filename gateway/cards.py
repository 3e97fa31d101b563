"""The agent cards (A2A 0.2.5 §5), built from the agents file: each agent's public card and, with auth
on, its authenticated extended card; and what the cards promise of the content an agent takes."""

from __future__ import annotations

from typing import Any

from config.agents import AgentConfig, AgentsConfig
from protocol import AgentCapabilities, AgentCard, AgentSkill, FilePart, Message
from protocol.types import SecurityScheme

# What a card declares of the gateway's auth: its `securitySchemes` and `security`.
Security = tuple[dict[str, SecurityScheme], list[dict[str, list[str]]]]

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


def build_agent_card(
    name: str,
    agent: AgentConfig,
    url: str,
    *,
    security: Security | None = None,
    extended: bool = False,
) -> AgentCard:
    """The card of agent `name`, whose JSON-RPC endpoint is `url`. `security`: the schemes the gateway
    enforces (None: it lets everyone in); then an extended card exists, and `extended` builds it."""
    skills = agent.skills or DEFAULT_SKILLS[agent.kind]
    if extended:
        skills = [*skills, *agent.extended_skills]
    schemes, requirements = security if security is not None else (None, None)
    return AgentCard(
        name=agent.name or name,
        description=agent.description,
        url=url,
        version=agent.version,
        capabilities=AgentCapabilities(
            streaming=True, pushNotifications=True, stateTransitionHistory=False
        ),
        securitySchemes=schemes,
        security=requirements,
        defaultInputModes=INPUT_MODES,
        defaultOutputModes=OUTPUT_MODES,
        skills=skills,
        supportsAuthenticatedExtendedCard=True if security is not None else None,
    )


# The file types each agent kind takes in a message (None: any). Claude reads images and PDFs; text files
# are read as text.
FILE_TYPES: dict[str, frozenset[str] | None] = {
    "echo": None,
    "claude": frozenset(
        {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"}
    ),
}


def unsupported_part(kind: str, message: Message) -> str | None:
    """Why the agent kind cannot take one of the message's parts, or None when it takes them all."""
    accepted = FILE_TYPES[kind]
    if accepted is None:
        return None
    for index, part in enumerate(message.parts):
        if isinstance(part, FilePart):
            mime = part.file.mimeType
            if mime is None:
                return f"message.parts[{index}] is a file without mimeType"
            if mime.lower() not in accepted:
                return (
                    f"message.parts[{index}] is a {mime} file; this agent takes "
                    f"{', '.join(sorted(accepted))}"
                )
    return None


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


class Cards:
    """Each agent's public card and, with `security`, its extended card: at its own endpoint
    `/agents/<name>` (`url`), and for the default agent also at the root, with the root `url`, which
    `POST /` serves."""

    def __init__(self, agents: AgentsConfig, root_url: str, security: Security | None) -> None:
        default = agents.default_agent
        self.public: dict[str, dict[str, Any]] = {}
        self.extended: dict[str, dict[str, Any]] = {}
        for name, agent in agents.agents.items():
            url = f"{root_url.rstrip('/')}/agents/{name}"
            self.public[name] = build_agent_card(name, agent, url, security=security).to_wire()
            if security is not None:
                self.extended[name] = build_agent_card(
                    name, agent, url, security=security, extended=True
                ).to_wire()
        self.root = build_agent_card(
            default, agents.agents[default], root_url, security=security
        ).to_wire()
        self.extended_root = {**self.extended.get(default, {}), "url": root_url}
