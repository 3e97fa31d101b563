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


# Where an agent's HTTP+JSON binding (A2A 1.0 §11) is mounted, below its JSON-RPC endpoint's path.
REST_SEGMENT = "rest"


def rest_url(rpc_url: str) -> str:
    return f"{rpc_url.rstrip('/')}/{REST_SEGMENT}"


def card_v1(card: dict[str, Any], rpc_url: str, *, extended: bool) -> dict[str, Any]:
    """The 1.0 card (the proto's JSON mapping) of a 0.2.5 card whose JSON-RPC endpoint is `rpc_url`:
    JSON-RPC 1.0, HTTP+JSON 1.0 and JSON-RPC 0.3 in `supportedInterfaces`. `extended`: an extended
    card exists (auth on)."""
    out: dict[str, Any] = {
        "name": card["name"],
        "description": card["description"],
        "supportedInterfaces": [
            {"url": rpc_url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
            {"url": rest_url(rpc_url), "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"},
            {"url": rpc_url, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
        ],
        "version": card["version"],
        "capabilities": {
            "streaming": True,
            "pushNotifications": True,
            **({"extendedAgentCard": True} if extended else {}),
        },
        "defaultInputModes": card["defaultInputModes"],
        "defaultOutputModes": card["defaultOutputModes"],
        "skills": card["skills"],
    }
    for key in ("provider", "documentationUrl", "iconUrl"):
        if key in card:
            out[key] = card[key]
    if "securitySchemes" in card:
        out["securitySchemes"] = {
            name: _scheme_v1(scheme) for name, scheme in card["securitySchemes"].items()
        }
        out["securityRequirements"] = [
            {"schemes": {name: {"list": scopes} for name, scopes in requirement.items()}}
            for requirement in card.get("security", [])
        ]
    return out


def _scheme_v1(scheme: dict[str, Any]) -> dict[str, Any]:
    fields = {key: value for key, value in scheme.items() if key != "type"}
    if scheme["type"] == "apiKey":
        fields["location"] = fields.pop("in")
        return {"apiKeySecurityScheme": fields}
    return {"httpAuthSecurityScheme": fields}


def combined_card(card: dict[str, Any], rpc_url: str, *, extended: bool) -> dict[str, Any]:
    """The card `/.well-known/agent-card.json` serves, which 1.0 and 0.3 clients both read: the 1.0
    card, and 0.3's top-level fields (its JSON-RPC interface) where 1.0 has none of its own, merged
    as the official 1.3.0 SDK merges them."""
    v03 = {
        **card,
        "url": rpc_url,
        "preferredTransport": "JSONRPC",
        "protocolVersion": "0.3.0",
    }
    return _merge(card_v1(card, rpc_url, extended=extended), v03)


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if key not in into:
            into[key] = value
        elif isinstance(value, dict) and isinstance(into[key], dict):
            _merge(into[key], value)
    return into


class Cards:
    """Each agent's public card and, with `security`, its extended card: at its own endpoint
    `/agents/<name>` (`url`), and for the default agent also at the root, with the root `url`, which
    `POST /` serves. Each in 0.2.5's form, and (`combined`, `v1_extended`) in 1.0's and 0.3's."""

    def __init__(self, agents: AgentsConfig, root_url: str, security: Security | None) -> None:
        default = agents.default_agent
        extended = security is not None
        self.public: dict[str, dict[str, Any]] = {}
        self.extended: dict[str, dict[str, Any]] = {}
        self.combined: dict[str, dict[str, Any]] = {}
        self.v1_extended: dict[str, dict[str, Any]] = {}
        for name, agent in agents.agents.items():
            url = f"{root_url.rstrip('/')}/agents/{name}"
            self.public[name] = build_agent_card(name, agent, url, security=security).to_wire()
            self.combined[name] = combined_card(self.public[name], url, extended=extended)
            if security is not None:
                self.extended[name] = build_agent_card(
                    name, agent, url, security=security, extended=True
                ).to_wire()
                self.v1_extended[name] = card_v1(self.extended[name], url, extended=True)
        self.root = build_agent_card(
            default, agents.agents[default], root_url, security=security
        ).to_wire()
        self.combined_root = combined_card(self.root, root_url, extended=extended)
        self.extended_root = {**self.extended.get(default, {}), "url": root_url}

    def extended_v1(self, agent: str) -> dict[str, Any] | None:
        """An agent's extended card in 1.0 form; None without auth."""
        return self.v1_extended.get(agent)

    def extended_v03(self, agent: str) -> dict[str, Any] | None:
        """An agent's extended card as 0.3 reads it; None without auth."""
        card = self.extended.get(agent)
        return None if card is None else {**card, "protocolVersion": "0.3.0"}
