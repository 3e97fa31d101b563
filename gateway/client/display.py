"""How the CLI shows a task: lines of text from the results `message/stream`, `message/send`, `tasks/get`
and `tasks/cancel` return, plain when piped, live in a terminal.

Every line but the reply's text is one of
    task <id> (context <id>)
    <state>                       a status change, e.g. `working`
    <state>: <status message>     e.g. `failed: Agent 'echo' failed: …`, `working: tool add {"a":2}`
The reply (each artifact's text) comes before the line of the state that ends the turn.

Text from the server is printed without control characters (but for tab and newline), in a terminal
or not: an escape sequence in an agent's reply could otherwise move the cursor, retitle the window or
set the clipboard (OSC 52) of whoever reads it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO

import orjson

# A2A 0.2.5 task states as plain strings: the client reads any server's JSON and, kept apart from the
# pydantic models, starts faster. tests/unit/test_display.py checks them against `protocol`.
# States the agent waits for the client in.
INTERRUPTED = frozenset({"input-required", "auth-required"})
# The states that make `send` and `task get` exit with 1.
UNSUCCESSFUL = frozenset({"failed", "rejected", "canceled", "unknown"})
# The states a turn ends in: the agent has finished, or waits for the client.
TURN_ENDS = UNSUCCESSFUL | INTERRUPTED | {"completed"}
RESTARTED = "[restarted]"
SHORT = 200
SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
CLEAR_LINE = "\r\x1b[2K"
# The fields read of each kind of result: (name, JSON type, whether it must be there). Whatever else a
# server sends, or leaves out, is shown as it is or not at all.
_FIELDS: dict[str, tuple[tuple[str, type, bool], ...]] = {
    "task": (
        ("id", str, True),
        ("status", dict, True),
        ("artifacts", list, False),
        ("history", list, False),
    ),
    "status-update": (("taskId", str, True), ("status", dict, True)),
    "artifact-update": (("taskId", str, True), ("artifact", dict, True)),
}
_TYPE_NAMES: dict[type, str] = {str: "a string", dict: "an object", list: "an array"}
# C0 controls but tab and newline, DEL, C1 controls (U+009B alone starts a sequence in some terminals).
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Characters JSON lets through unescaped that are controls all the same.
_JSON_CONTROLS = re.compile("[\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` without control characters, but for tab and newline."""
    return _CONTROLS.sub("", text)


def json_text(value: Any, *, indent: bool = False) -> str:
    """`value` as JSON safe to print: orjson escapes C0 controls, this DEL and C1 controls too (they
    can stand only in strings, so the JSON means the same)."""
    text = orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2 if indent else 0).decode()
    return _JSON_CONTROLS.sub(lambda match: f"\\u{ord(match[0]):04x}", text)


def task_line(task: dict[str, Any]) -> str:
    return f"task {task.get('id')} (context {task.get('contextId')})"


def status_line(status: dict[str, Any], reply: Iterable[str] = ()) -> str:
    """`<state>` or `<state>: <message>`; a message that only repeats the reply (some agents put the
    whole reply in the final status too) is left out."""
    state = str(status.get("state"))
    message = status.get("message")
    text = parts_text(message.get("parts"), inline=True) if isinstance(message, dict) else ""
    if not text.strip() or text.strip() in {r.strip() for r in reply}:
        return state
    return f"{state}: {text}"


def parts_text(parts: Any, *, inline: bool = False) -> str:
    """Text parts run together (a streamed reply arrives as many); a data or file part gets a line of
    its own, or with `inline` a space either side and at most SHORT characters."""
    text = ""
    after_text = True
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict):
            continue
        is_text = part.get("kind") == "text"
        piece = str(part.get("text", "")) if is_text else _other_part(part, inline=inline)
        if text and not (is_text and after_text) and not text.endswith("\n"):
            text += " " if inline else "\n"
        text += piece
        after_text = is_text
    return text


def _other_part(part: dict[str, Any], *, inline: bool) -> str:
    if part.get("kind") == "data":
        text = _data(part.get("data"))
    elif part.get("kind") == "file" and isinstance(part.get("file"), dict):
        text = _file(part["file"])
    else:
        text = _json(part)
    return _shorten(text) if inline else text


def _data(data: Any) -> str:
    # This gateway's Claude agent reports each tool call as a status message carrying a DataPart.
    if isinstance(data, dict) and isinstance(data.get("tool"), str):
        if data.get("event") == "tool_executing":
            return f"tool {data['tool']} {_json(data.get('input'))}"
        if data.get("event") == "tool_completed":
            outcome = "failed" if data.get("isError") else "done"
            return f"tool {data['tool']} {outcome}: {_text(data.get('output'))}"
    return _json(data)


def _file(file: dict[str, Any]) -> str:
    fields = [str(file[key]) for key in ("name", "mimeType", "uri") if file.get(key)]
    if isinstance(file.get("bytes"), str):
        fields.append(f"{len(file['bytes']) * 3 // 4} bytes")
    return f"[file {', '.join(fields)}]" if fields else "[file]"


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else _json(value)


def _shorten(text: str) -> str:
    return text if len(text) <= SHORT else text[: SHORT - 1] + "…"


def task_lines(task: dict[str, Any], *, history: bool = False) -> list[str]:
    """A task as `task get` prints it: the task line, its history (`<role>: <text>`) if asked for,
    each artifact's text, the status line."""
    lines = [task_line(task)]
    if history:
        for message in task.get("history") or []:
            if isinstance(message, dict):
                lines.append(f"{message.get('role')}: {parts_text(message.get('parts'))}")
    replies = [
        parts_text(a.get("parts")) for a in task.get("artifacts") or [] if isinstance(a, dict)
    ]
    lines += [reply.removesuffix("\n") for reply in replies if reply]
    status = task.get("status")
    lines.append(status_line(status, replies) if isinstance(status, dict) else "unknown")
    return [printable(line) for line in lines]


def unreadable(result: Any, *, task: bool = False) -> str | None:
    """Why `result` cannot be shown, or None: a Task or an event with a field missing or of another
    JSON type than these functions read. With `task`, `result` must be a Task, whatever its `kind`."""
    if not isinstance(result, dict):
        return f"{_shorten(json_text(result))}, not a task" if task else None
    kind = "task" if task else result.get("kind")
    if not isinstance(kind, str):
        return None
    for name, expected, required in _FIELDS.get(kind, ()):
        value = result.get(name)
        if value is None and not required:
            continue
        article = "an" if kind[0] in "aeiou" else "a"
        if name not in result:
            return f"{article} {kind} with no {name}"
        if not isinstance(value, expected):
            shown = _shorten(json_text(value))
            return f"{article} {kind} whose {name} is {shown}, not {_TYPE_NAMES[expected]}"
    return None


class Spinner:
    """A progress line redrawn in place on a terminal's stderr: `⠋ working 1.2s`."""

    def __init__(self, err: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self._err = err
        self._clock = clock
        self._start = clock()
        self._frame = 0
        self._shown = False
        try:
            SPINNER_FRAMES.encode(err.encoding or "ascii")
            self._frames = SPINNER_FRAMES
        except (UnicodeEncodeError, LookupError):
            self._frames = "|/-\\"

    def draw(self, label: str) -> None:
        frame = self._frames[self._frame % len(self._frames)]
        self._frame += 1
        label = printable(label)
        self._err.write(f"{CLEAR_LINE}{frame} {label} {self._clock() - self._start:.1f}s")
        self._err.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self._err.write(CLEAR_LINE)
            self._err.flush()
            self._shown = False


@dataclass
class _Artifact:
    parts: list[Any]
    # Live: the text written so far. Plain: the text printed when the turn ended.
    shown: str = ""


class Transcript:
    """Prints one task as the results about it arrive.

    Plain (piped): the task line, a line per status change, and at the end of the turn each artifact's
    text once, however it was streamed or restarted, then the final status line. Live (a terminal): the
    same lines, but artifact text is written as it arrives; an artifact sent again with `append:false`
    (an agent's retried attempt) is written anew after a `[restarted]` line; the spinner runs while the
    cursor is at the start of a line. Quiet: prints nothing, only follows the task.

    With `snapshot_first` (a reply to an existing task), a first result that is the Task is its state
    before this message: its status is not a change and its artifacts are not this turn's. A stream
    that does not begin with the Task gets its task line from the first event naming the task."""

    def __init__(
        self,
        out: TextIO,
        *,
        live: bool = False,
        spinner: Spinner | None = None,
        quiet: bool = False,
        snapshot_first: bool = False,
        earlier_artifacts: Iterable[str] = (),
    ) -> None:
        self.task_id: str | None = None
        self.context_id: str | None = None
        self.state: str | None = None
        # Whether the turn has ended: a final status, a state that ends a turn, or a Message reply.
        self.ended = False
        self.spinner = spinner
        self._out = out
        self._live = live
        self._quiet = quiet
        self._snapshot_first = snapshot_first
        self._earlier = set(earlier_artifacts)
        self._artifacts: dict[str, _Artifact] = {}
        self._last_status: str | None = None
        self._at_line_start = True
        self._current: _Artifact | None = None

    def show(self, result: Any) -> None:
        if not isinstance(result, dict):
            return
        kind = result.get("kind")
        snapshot = self._snapshot_first
        self._snapshot_first = False
        if kind in ("status-update", "artifact-update") and self.task_id is None:
            # A server whose stream does not begin with the Task (PROTOCOL.md §7 item 6 says it should).
            self._identify({"id": result.get("taskId"), "contextId": result.get("contextId")})
        if kind == "task":
            self._task(result, snapshot=snapshot)
        elif kind == "status-update" and isinstance(result.get("status"), dict):
            self._status(result["status"], final=result.get("final") is True)
        elif kind == "artifact-update" and isinstance(result.get("artifact"), dict):
            self._artifact(result["artifact"], append=result.get("append") is True)
        elif kind == "message":
            self._message(result)

    def end(self) -> None:
        """No more results: show what the turn has not shown yet."""
        self._flush()

    def close(self) -> None:
        """Leave the terminal tidy: no spinner, the cursor at the start of a line."""
        if self.spinner is not None:
            self.spinner.clear()
        if not self._at_line_start:
            self._write("\n")

    def tick(self) -> None:
        if self.spinner is not None and self._at_line_start:
            self.spinner.draw(self.state or "sending")

    def _identify(self, task: dict[str, Any]) -> None:
        if self.task_id is None:
            self._line(task_line(task))
        self.task_id = task.get("id")
        self.context_id = task.get("contextId")

    def _task(self, task: dict[str, Any], *, snapshot: bool) -> None:
        self._identify(task)
        artifacts = [a for a in task.get("artifacts") or [] if isinstance(a, dict)]
        if snapshot:
            self._earlier |= {str(a.get("artifactId")) for a in artifacts}
            return
        for artifact in artifacts:
            self._artifact(artifact, append=False, streamed=False)
        status = task.get("status")
        if isinstance(status, dict):
            self._status(status, final=False)

    def _status(self, status: dict[str, Any], *, final: bool) -> None:
        self.state = str(status.get("state"))
        if final or self.state in TURN_ENDS:
            self._flush()
            self.ended = True
        line = status_line(status, [parts_text(a.parts) for a in self._turn_artifacts()])
        if line != self._last_status:
            self._line(line)
            self._last_status = line

    def _artifact(self, artifact: dict[str, Any], *, append: bool, streamed: bool = True) -> None:
        """`streamed`: from an artifact-update, so part of this turn; a Task carries earlier ones too."""
        key = str(artifact.get("artifactId"))
        parts = artifact.get("parts")
        parts = list(parts) if isinstance(parts, list) else []
        entry = self._artifacts.get(key)
        if entry is None:
            entry = self._artifacts[key] = _Artifact(parts)
        elif append:
            entry.parts.extend(parts)
        else:
            entry.parts = parts
        if streamed:
            self._earlier.discard(key)
        if self._live and key not in self._earlier:
            self._write_live(entry)

    def _write_live(self, entry: _Artifact) -> None:
        text = parts_text(entry.parts)
        if text.startswith(entry.shown):
            new = text[len(entry.shown) :]
            if new and self._current is not entry:
                self._end_line()
            self._write(new)
        else:
            self._line(RESTARTED)
            self._write(text)
        entry.shown = text
        self._current = entry

    def _message(self, message: dict[str, Any]) -> None:
        """An agent may answer with a Message instead of a Task: that is its whole reply."""
        self._line(parts_text(message.get("parts")).removesuffix("\n"))
        if self.task_id is None:
            self.ended = True

    def _flush(self) -> None:
        if self._live:
            self._end_line()
            return
        for entry in self._turn_artifacts():
            text = parts_text(entry.parts)
            if text and text != entry.shown:
                self._line(text.removesuffix("\n"))
                entry.shown = text

    def _turn_artifacts(self) -> list[_Artifact]:
        return [entry for key, entry in self._artifacts.items() if key not in self._earlier]

    def _line(self, text: str) -> None:
        self._end_line()
        self._write(text + "\n")

    def _end_line(self) -> None:
        if not self._at_line_start:
            self._write("\n")

    def _write(self, text: str) -> None:
        text = printable(text)
        if self._quiet or not text:
            return
        if self.spinner is not None:
            self.spinner.clear()
        self._out.write(text)
        self._out.flush()
        self._at_line_start = text.endswith("\n")
