"""What the A2A methods check of their params beyond their schema (-32602, -32005)."""

from __future__ import annotations

from gateway.cards import OUTPUT_MODES, accepts_output
from protocol import (
    ContentTypeNotSupportedError,
    InvalidParamsError,
    Message,
    MessageSendConfiguration,
    MessageSendParams,
)


def check_send(params: MessageSendParams) -> MessageSendConfiguration:
    """The send's configuration (its defaults when absent), once its history length and message pass."""
    config = params.configuration or MessageSendConfiguration()
    check_history_length(config.historyLength, "configuration.historyLength")
    _check_message(params.message, config)
    return config


def check_history_length(value: int | None, field: str) -> None:
    if value is not None and value < 0:
        raise InvalidParamsError(f"{field} must be 0 or more, got {value}")


def _check_message(message: Message, config: MessageSendConfiguration) -> None:
    if message.role != "user":
        raise InvalidParamsError(f"message.role must be 'user', got '{message.role}'")
    accepted = config.acceptedOutputModes
    if accepted and not accepts_output(accepted, OUTPUT_MODES):
        raise ContentTypeNotSupportedError(
            f"Incompatible content types: this agent produces {', '.join(OUTPUT_MODES)}; "
            f"configuration.acceptedOutputModes is {accepted}"
        )
