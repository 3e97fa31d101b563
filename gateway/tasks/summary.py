"""A task's line in the Temporal UI."""

from __future__ import annotations

from protocol import Message, TextPart

# Temporal documents a workflow's static summary as one line of at most 200 bytes.
SUMMARY_MAX_BYTES = 200
ELLIPSIS = "…"


def task_summary(message: Message) -> str:
    """The task's line in the Temporal UI: the start of the user's first message on one line, or the
    kinds of its other parts (`[file]`, `[file, data]`) when it has no text."""
    texts = (part.text for part in message.parts if isinstance(part, TextPart))
    text = " ".join(" ".join(texts).split())
    if not text:
        kinds: list[str] = [part.kind for part in message.parts if not isinstance(part, TextPart)]
        return f"[{', '.join(dict.fromkeys(kinds or ['text']))}]"
    encoded = text.encode()
    if len(encoded) <= SUMMARY_MAX_BYTES:
        return text
    # A cut inside a multi-byte character drops that character.
    start = encoded[: SUMMARY_MAX_BYTES - len(ELLIPSIS.encode())].decode(errors="ignore")
    return start.rstrip() + ELLIPSIS
