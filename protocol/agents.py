"""The agents file: which agents this deployment runs, where their tasks go, and what their cards say.

Both the gateway and the workers read it (`A2A_CONFIG`, a TOML file). Pure data: callers read the file.

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
```
"""

from __future__ import annotations

import re
import tomllib
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
    options: dict[str, Any] = Field(default_factory=dict)


class AgentsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: str | None = None
    agents: dict[str, AgentConfig] = Field(min_length=1)

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
