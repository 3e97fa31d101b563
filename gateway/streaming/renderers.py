"""The two views of one event log (ARCHITECTURE.md, "Two views of one event log"): what each log entry
becomes on an A2A stream (`message/stream`, `tasks/resubscribe`) and on a browser stream
(`GET /tasks/{id}/events`, the `/ws` feed), and when each view's stream ends."""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from gateway.streaming.log import SNAPSHOT, LogEntry
from protocol import INTERRUPTED_STATES, TERMINAL_STATES, RequestId
from protocol.v1 import artifact_update_to_v1, error_wire_to_v1, status_update_to_v1, task_to_v1

# The task as a message was accepted: leads a follow-up's `message/stream` (internal, never in the log).
ACCEPTED = "task.accepted"
_TERMINAL = frozenset(state.value for state in TERMINAL_STATES)
_END_OF_TURN = _TERMINAL | frozenset(state.value for state in INTERRUPTED_STATES)


def _state(task: dict[str, Any]) -> str:
    state: str = task["status"]["state"]
    return state


class Renderer(Protocol):
    # The metrics label of the view this renderer writes.
    view: str

    def frame(self, entry: LogEntry) -> bytes: ...

    def ends(self, entry: LogEntry) -> bool:
        """Whether the stream closes after this entry."""
        ...

    def over(self, task: dict[str, Any]) -> bool:
        """Whether a task in this state, with nothing left in its log to send, has nothing more to send."""
        ...


def _sse(entry_id: str, data: bytes) -> bytes:
    return b"id: " + entry_id.encode() + b"\ndata: " + data + b"\n\n"


class A2ARenderer:
    """`data:` = a JSON-RPC response to the streaming request (PROTOCOL.md §7)."""

    view = "a2a"

    def __init__(self, request_id: RequestId, history_length: int | None = None) -> None:
        self._request_id = request_id
        self._history_length = history_length

    def frame(self, entry: LogEntry) -> bytes:
        event = entry.event
        kind = event["type"]
        if kind == "task.error":
            response = {"jsonrpc": "2.0", "id": self._request_id, "error": event["error"]}
            return _sse(entry.id, orjson.dumps(response))
        result: dict[str, Any]
        if kind == "task.status":
            result = {
                "taskId": event["taskId"],
                "contextId": event["contextId"],
                "status": event["status"],
                "final": False,
                "kind": "status-update",
            }
        elif kind == "task.progress":
            result = {
                "taskId": event["taskId"],
                "contextId": event["contextId"],
                "artifact": event["artifact"],
                "append": event.get("append", False),
                "lastChunk": event.get("lastChunk", False),
                "kind": "artifact-update",
            }
        elif kind == "task.completed":
            task = event["task"]
            result = {
                "taskId": task["id"],
                "contextId": task["contextId"],
                "status": task["status"],
                "final": True,
                "kind": "status-update",
            }
        else:  # task.created, a snapshot, or the accepted task
            result = self._trimmed(event["task"])
        return _sse(
            entry.id, orjson.dumps({"jsonrpc": "2.0", "id": self._request_id, "result": result})
        )

    def ends(self, entry: LogEntry) -> bool:
        kind = entry.event["type"]
        if kind == SNAPSHOT:
            return self.over(entry.event["task"])
        return kind in ("task.completed", "task.error")

    def over(self, task: dict[str, Any]) -> bool:
        return _state(task) in _END_OF_TURN

    def _trimmed(self, task: dict[str, Any]) -> dict[str, Any]:
        keep = self._history_length
        if keep is None:
            return task
        history = task.get("history") or []
        return {**task, "history": history[len(history) - keep :] if keep else []}


class V1Renderer(A2ARenderer):
    """A2A 1.0: `data:` = a `StreamResponse` (`task`, `statusUpdate`, `artifactUpdate`), wrapped in a
    JSON-RPC response (`envelope`, the JSON-RPC binding) or bare (HTTP+JSON). The stream ends where
    0.2.5's does: at the end of the turn."""

    def __init__(
        self, request_id: RequestId, history_length: int | None = None, *, envelope: bool = True
    ) -> None:
        super().__init__(request_id, history_length)
        self._envelope = envelope

    def frame(self, entry: LogEntry) -> bytes:
        event = entry.event
        kind = event["type"]
        if kind == "task.error":
            error = error_wire_to_v1(event["error"])
            if not self._envelope:
                # HTTP+JSON: an `error` event carrying the google.rpc.Status-shaped error.
                return b"event: error\n" + _sse(entry.id, orjson.dumps({"error": error}))
            body = {"jsonrpc": "2.0", "id": self._request_id, "error": error}
            return _sse(entry.id, orjson.dumps(body))
        result: dict[str, Any]
        if kind == "task.status":
            result = status_update_to_v1(event["taskId"], event["contextId"], event["status"])
        elif kind == "task.progress":
            result = artifact_update_to_v1(event)
        elif kind == "task.completed":
            task = event["task"]
            result = status_update_to_v1(task["id"], task["contextId"], task["status"])
        else:
            result = {"task": task_to_v1(event["task"], history_length=self._history_length)}
        if self._envelope:
            result = {"jsonrpc": "2.0", "id": self._request_id, "result": result}
        return _sse(entry.id, orjson.dumps(result))


class BrowserRenderer:
    """`data:` = `{"type": ..., ...}` for `EventSource.onmessage`; the stream lives until the task ends."""

    view = "browser"

    def frame(self, entry: LogEntry) -> bytes:
        return _sse(entry.id, orjson.dumps(self.payload(entry)))

    def payload(self, entry: LogEntry) -> dict[str, Any]:
        """What `data:` carries (the `/ws` feed sends the same)."""
        event = entry.event
        kind = event["type"]
        payload: dict[str, Any]
        if kind == "task.status":
            payload = {"type": kind, "taskId": event["taskId"], "status": event["status"]}
        elif kind == "task.progress":
            payload = {
                "type": kind,
                "taskId": event["taskId"],
                "artifact": event["artifact"],
                "append": event.get("append", False),
                "lastChunk": event.get("lastChunk", False),
            }
        elif kind == "task.completed":
            payload = {"type": kind, "task": event["task"]}
        elif kind == "task.error":
            payload = {"type": kind, "taskId": event["taskId"], "error": event["error"]}
        else:  # task.created, or a snapshot that stands in for the log's beginning
            payload = {"type": "task.created", "task": event["task"]}
        return payload

    def ends(self, entry: LogEntry) -> bool:
        event = entry.event
        kind = event["type"]
        if kind in ("task.completed", SNAPSHOT):
            return self.over(event["task"])
        return bool(kind == "task.error")

    def over(self, task: dict[str, Any]) -> bool:
        return _state(task) in _TERMINAL
