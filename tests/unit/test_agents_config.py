"""The agents file: parsing, and errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.agents import AgentConfig, AgentsConfig, AgentsConfigError
from gateway.settings import GatewaySettings
from protocol import AgentSkill
from workers import WorkerSettings, build_agent

TWO_AGENTS = """
default = "shout"

[agents.echo]
kind = "echo"

[agents.shout]
kind = "echo"
task_queue = "loud"
name = "Shout Agent"
description = "Echoes, in three pieces."
version = "2.0.0"
options = { chunks = 3 }

[[agents.shout.skills]]
id = "shout"
name = "Shout"
description = "Says it back."
tags = ["echo"]
"""


def test_agents_file_parses_with_defaults() -> None:
    config = AgentsConfig.from_toml(TWO_AGENTS, "agents.toml")
    assert config.default_agent == "shout"
    assert config.agents == {
        "echo": AgentConfig(kind="echo"),
        "shout": AgentConfig(
            kind="echo",
            task_queue="loud",
            name="Shout Agent",
            description="Echoes, in three pieces.",
            version="2.0.0",
            options={"chunks": 3},
            skills=[
                AgentSkill(id="shout", name="Shout", description="Says it back.", tags=["echo"])
            ],
        ),
    }


def test_default_agent_is_the_first_when_not_named() -> None:
    config = AgentsConfig.from_toml('[agents.b]\nkind = "echo"\n[agents.a]\nkind = "echo"\n', "f")
    assert config.default_agent == "b"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a.toml: agents: Field required"),
        (
            "[agents]",
            "a.toml: agents: Dictionary should have at least 1 item after validation, not 0",
        ),
        (
            '[agents.x]\nkind = "robot"',
            "a.toml: agents.x.kind: Input should be 'echo' or 'claude'",
        ),
        (
            '[agents.x]\nkind = "echo"\ncolour = "red"',
            "a.toml: agents.x.colour: Extra inputs are not permitted",
        ),
        (
            '[agents."Bad Name"]\nkind = "echo"',
            "a.toml: file: Value error, agent name 'Bad Name' must be lowercase letters, digits, "
            "'-' or '_' (it is part of the agent's URL)",
        ),
        (
            'default = "y"\n[agents.x]\nkind = "echo"',
            "a.toml: file: Value error, default 'y' is not one of the agents",
        ),
    ],
)
def test_bad_agents_file_names_the_key(text: str, message: str) -> None:
    with pytest.raises(AgentsConfigError) as caught:
        AgentsConfig.from_toml(text, "a.toml")
    assert str(caught.value) == message


def test_invalid_toml_names_the_file() -> None:
    with pytest.raises(AgentsConfigError) as caught:
        AgentsConfig.from_toml("agents = [", "a.toml")
    # tomllib's own wording differs between Python versions.
    assert str(caught.value).startswith("a.toml: not valid TOML: ")


def test_gateway_without_a_file_serves_its_one_agent() -> None:
    config = GatewaySettings(agent="solo", task_queue="q", agent_name="Solo").agents_config()
    assert config.default_agent == "solo"
    assert config.agents["solo"].task_queue == "q"
    assert config.agents["solo"].name == "Solo"


def test_worker_takes_its_agent_and_queue_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "agents.toml"
    path.write_text(TWO_AGENTS)
    assert WorkerSettings(config=path, agent="shout").agent_config().task_queue == "loud"
    override = WorkerSettings(config=path, agent="shout", task_queue="other").agent_config()
    assert override.task_queue == "other"
    with pytest.raises(AgentsConfigError) as caught:
        WorkerSettings(config=path, agent="nobody").agent_config()
    assert str(caught.value) == (
        f"{path} has no agent named 'nobody' (--agent / A2A_WORKER_AGENT); its agents: echo, shout"
    )


def test_missing_agents_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AgentsConfigError) as caught:
        GatewaySettings(config=tmp_path / "nope.toml").agents_config()
    assert str(caught.value).startswith(
        f"cannot read the agents file {tmp_path / 'nope.toml'} (A2A_CONFIG): "
    )


def test_bad_agent_options_name_the_agent() -> None:
    with pytest.raises(AgentsConfigError) as caught:
        build_agent("shout", AgentConfig(kind="echo", options={"chunks": 0, "tone": "loud"}))
    assert str(caught.value) == (
        "agents.shout.options: chunks: Input should be greater than or equal to 1; "
        "tone: Extra inputs are not permitted"
    )
