"""The agents file: which agents this deployment runs, where their tasks go, and what their cards say.

Both the gateway and the workers read it (`A2A_CONFIG`, a TOML file: `read_agents_file`).

```toml
default = "echo"            # the agent of `POST /` and the root card (default: the first one)

[agents.echo]
kind = "echo"
name = "Echo Agent"
description = "Replies with the text it receives."
[agents.echo.options]       # the kind's own options
chunks = 3

[[agents.echo.skills]]
id = "echo"
name = "Echo"
description = "Echoes your message."
tags = ["echo"]

[auth]                      # without it, the gateway lets everyone in
api_key_header = "X-API-Key"
[auth.api_keys.alice]       # principal "alice"
key_sha256 = "<hex SHA-256 of the key>"   # or key_env = "ALICE_API_KEY"
agents = ["echo"]           # the agents alice may use (default: all)
[auth.jwt]                  # Bearer JWTs: HS256 with a shared secret, or RS256/ES256 from a JWKS URL
secret_env = "A2A_JWT_SECRET"
audience = "a2a-gateway"
issuer = "https://issuer.example"
```
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from protocol.types import AgentSkill

_AGENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class AgentsConfigError(ValueError):
    """The agents file is invalid; the message names the key."""


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["echo", "claude"]
    # Defaults to `a2a-agent-<name>`.
    task_queue: str | None = None
    name: str | None = None
    description: str = "An agent behind an A2A gateway."
    version: str = "0.1.0"
    skills: list[AgentSkill] = Field(default_factory=list)
    # Skills listed only on the authenticated extended card (GET /agent/authenticatedExtendedCard).
    extended_skills: list[AgentSkill] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)


class ApiKeyConfig(BaseModel):
    """One principal's API key: its SHA-256 (hex) in the file, or the name of a variable holding it."""

    model_config = ConfigDict(extra="forbid")

    key_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    key_env: str | None = None
    # The agents this principal may use; None: all of them.
    agents: list[str] | None = None

    @model_validator(mode="after")
    def _one_key(self) -> ApiKeyConfig:
        if (self.key_sha256 is None) == (self.key_env is None):
            raise ValueError("give exactly one of key_sha256 and key_env")
        return self


class JWTConfig(BaseModel):
    """Bearer JWTs: HS256 with a secret from `secret_env`, or RS256/ES256 with keys from `jwks_url`."""

    model_config = ConfigDict(extra="forbid")

    secret_env: str | None = None
    jwks_url: str | None = None
    audience: str
    issuer: str
    # The claim naming the principal (tenancy: a task belongs to it).
    principal_claim: str = "sub"
    # A claim listing the agents the token may use; None: every agent. With a claim name set, a token
    # without that claim may use none.
    agents_claim: str | None = None
    leeway_seconds: float = Field(default=30.0, ge=0)
    # How long fetched JWKS keys are trusted before they are fetched again.
    jwks_cache_seconds: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _one_key_source(self) -> JWTConfig:
        if (self.secret_env is None) == (self.jwks_url is None):
            raise ValueError("give exactly one of secret_env (HS256) and jwks_url (RS256/ES256)")
        return self


class AuthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The header carrying an API key (the card's `apiKey` scheme names it).
    api_key_header: str = "X-API-Key"
    # Principal name -> key.
    api_keys: dict[str, ApiKeyConfig] = Field(default_factory=dict)
    jwt: JWTConfig | None = None

    @model_validator(mode="after")
    def _some_scheme(self) -> AuthConfig:
        if not self.api_keys and self.jwt is None:
            raise ValueError("[auth] needs api_keys or jwt (remove the section to switch auth off)")
        return self


class AgentsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: str | None = None
    agents: dict[str, AgentConfig] = Field(min_length=1)
    auth: AuthConfig | None = None

    @model_validator(mode="after")
    def _check_names(self) -> AgentsConfig:
        for name in self.agents:
            if not _AGENT_NAME.match(name):
                raise ValueError(
                    f"agent name {name!r} must be lowercase letters, digits, '-' or '_' "
                    "(it is part of the agent's URL)"
                )
        if self.default is not None and self.default not in self.agents:
            raise ValueError(f"default {self.default!r} is not one of the agents")
        for principal, key in (self.auth.api_keys if self.auth else {}).items():
            unknown = sorted(set(key.agents or ()) - set(self.agents))
            if unknown:
                raise ValueError(f"auth.api_keys.{principal}.agents: no agent named {unknown[0]!r}")
        return self

    @property
    def default_agent(self) -> str:
        return self.default or next(iter(self.agents))

    @classmethod
    def from_toml(cls, text: str, source: str) -> AgentsConfig:
        """Parse an agents file; errors name the file and the key."""
        try:
            return cls.model_validate(tomllib.loads(text))
        except tomllib.TOMLDecodeError as err:
            raise AgentsConfigError(f"{source}: not valid TOML: {err}") from err
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'file'}: {error['msg']}"
                for error in err.errors(include_url=False)
            )
            raise AgentsConfigError(f"{source}: {problems}") from err


def read_agents_file(path: Path) -> AgentsConfig:
    """The agents file at `path` (A2A_CONFIG); AgentsConfigError naming it when it cannot be read."""
    try:
        text = path.read_text()
    except OSError as err:
        raise AgentsConfigError(f"cannot read the agents file {path} (A2A_CONFIG): {err}") from err
    return AgentsConfig.from_toml(text, str(path))
