"""One module per agent kind. Every agent implements `Agent`."""

from workers.agents.base import Agent, AgentReply, Turn
from workers.agents.claude import ClaudeAgent, ClaudeOptions
from workers.agents.echo import EchoAgent, EchoOptions

__all__ = [
    "Agent",
    "AgentReply",
    "ClaudeAgent",
    "ClaudeOptions",
    "EchoAgent",
    "EchoOptions",
    "Turn",
]
