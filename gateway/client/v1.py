"""A2A 1.0 for the CLI: whether an agent card offers it, and `V1Client`, which takes the 0.2.5 calls the
commands make and makes them in 1.0 (`SendMessage`, `SendStreamingMessage`, `GetTask`, `CancelTask`,
with `A2A-Version: 1.0`), turning what comes back into the 0.2.5 shapes `display` shows. So `send`
prints the same lines, and `--json` the same Task, whichever version the server speaks.

1.0's JSON (the proto's JSON mapping) differs from 0.2.5's in its shapes, not its meaning: no `kind`,
results and stream events wrapped in a field naming what they are (`{"task": ...}`, `{"statusUpdate":
...}`), states `TASK_STATE_*`, roles `ROLE_*`, and parts flattened (`{"text"}`, `{"data"}`, `{"raw"|"url",
"mediaType", "filename"}`). Whatever else a server sends is passed on as it is."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from gateway.client.rpc import A2AClient

V1 = "1.0"
VERSION_HEADER = "A2A-Version"
STATE_PREFIX = "TASK_STATE_"
# 0.2.5's methods the CLI calls -> 1.0's.
METHODS = {
    "message/send": "SendMessage",
    "message/stream": "SendStreamingMessage",
    "tasks/get": "GetTask",
    "tasks/cancel": "CancelTask",
    "tasks/resubscribe": "SubscribeToTask",
}
# The 0.2.5 states a status update ends a turn in (a 1.0 status update has no `final`).
_TURN_ENDS = frozenset(
    {"completed", "failed", "rejected", "canceled", "unknown", "input-required", "auth-required"}
)
_EVENTS = {"task": "task", "message": "message"}


def speaks_v1(card: Any) -> bool:
    """Whether an agent card lists a JSON-RPC interface of A2A 1.0 (any 1.0.x)."""
    interfaces = card.get("supportedInterfaces") if isinstance(card, dict) else None
    return isinstance(interfaces, list) and any(
        isinstance(entry, dict)
        and entry.get("protocolBinding") == "JSONRPC"
        and str(entry.get("protocolVersion", "")).split(".")[:2] == ["1", "0"]
        for entry in interfaces
    )


def state_filter(name: str) -> str:
    """A state as ListTasks filters by it: `input-required`, `INPUT_REQUIRED` and
    `TASK_STATE_INPUT_REQUIRED` are all TASK_STATE_INPUT_REQUIRED."""
    state = name.strip().upper().replace("-", "_")
    return state if state.startswith(STATE_PREFIX) else STATE_PREFIX + state


def state_from_v1(state: Any) -> Any:
    """`TASK_STATE_INPUT_REQUIRED` -> `input-required`; TASK_STATE_UNSPECIFIED is 0.2.5's `unknown`."""
    if not isinstance(state, str) or not state.startswith(STATE_PREFIX):
        return state
    name = state.removeprefix(STATE_PREFIX).lower().replace("_", "-")
    return "unknown" if name == "unspecified" else name


def part_from_v1(part: Any) -> Any:
    if not isinstance(part, dict):
        return part
    rest = {k: v for k, v in part.items() if k not in ("text", "data", "raw", "url")}
    if "text" in part:
        return {"kind": "text", "text": part["text"], **_keep(rest, "metadata")}
    if "data" in part:
        return {"kind": "data", "data": part["data"], **_keep(rest, "metadata")}
    if "raw" not in part and "url" not in part:
        return part
    file = {"bytes": part["raw"]} if "raw" in part else {"uri": part["url"]}
    for ours, theirs in (("name", "filename"), ("mimeType", "mediaType")):
        if theirs in part:
            file[ours] = part[theirs]
    return {"kind": "file", "file": file, **_keep(rest, "metadata")}


def _keep(fields: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: fields[name] for name in names if fields.get(name) is not None}


def _parts(parts: Any) -> Any:
    return [part_from_v1(part) for part in parts] if isinstance(parts, list) else parts


def message_from_v1(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    role = message.get("role")
    if isinstance(role, str) and role.startswith("ROLE_"):
        role = role.removeprefix("ROLE_").lower()
    return {**message, "role": role, "parts": _parts(message.get("parts")), "kind": "message"}


def status_from_v1(status: Any) -> Any:
    if not isinstance(status, dict):
        return status
    out = dict(status)
    if "state" in status:
        out["state"] = state_from_v1(status["state"])
    if "message" in status:
        out["message"] = message_from_v1(status["message"])
    return out


def artifact_from_v1(artifact: Any) -> Any:
    if not isinstance(artifact, dict):
        return artifact
    return {**artifact, "parts": _parts(artifact.get("parts"))}


def task_from_v1(task: Any) -> Any:
    """A 1.0 Task in 0.2.5's shape."""
    if not isinstance(task, dict):
        return task
    out = {**task, "status": status_from_v1(task.get("status")), "kind": "task"}
    if isinstance(task.get("history"), list):
        out["history"] = [message_from_v1(message) for message in task["history"]]
    if isinstance(task.get("artifacts"), list):
        out["artifacts"] = [artifact_from_v1(artifact) for artifact in task["artifacts"]]
    return out


def result_from_v1(result: Any) -> Any:
    """A 1.0 SendMessage result or stream event (`{"task"}`, `{"message"}`, `{"statusUpdate"}`,
    `{"artifactUpdate"}`) in 0.2.5's shape; one that is none of these: None, which shows nothing."""
    if not isinstance(result, dict):
        return result
    if isinstance(result.get("task"), dict):
        return task_from_v1(result["task"])
    if isinstance(result.get("message"), dict):
        return message_from_v1(result["message"])
    update = result.get("statusUpdate")
    if isinstance(update, dict):
        status = status_from_v1(update.get("status"))
        state = status.get("state") if isinstance(status, dict) else None
        final = update.get("final") is True or state in _TURN_ENDS
        return {**update, "status": status, "final": final, "kind": "status-update"}
    update = result.get("artifactUpdate")
    if isinstance(update, dict):
        artifact = artifact_from_v1(update.get("artifact"))
        return {**update, "artifact": artifact, "kind": "artifact-update"}
    return None


def message_to_v1(message: Mapping[str, Any]) -> dict[str, Any]:
    """A 0.2.5 Message (the CLI sends text and data parts) in 1.0's shape."""
    out = {k: v for k, v in message.items() if k not in ("kind", "role", "parts")}
    out["role"] = f"ROLE_{str(message.get('role', 'user')).upper()}"
    out["parts"] = [
        {k: v for k, v in part.items() if k != "kind"} for part in message.get("parts", [])
    ]
    return out


def params_to_v1(method: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """0.2.5 params in 1.0's shape: a message's, and `blocking` as `returnImmediately`."""
    out = dict(params)
    if method in ("message/send", "message/stream"):
        out["message"] = message_to_v1(params["message"])
        configuration = dict(params.get("configuration") or {})
        if "blocking" in configuration:
            configuration["returnImmediately"] = configuration.pop("blocking") is not True
        out["configuration"] = configuration
    return out


class V1Client:
    """An A2AClient's calls made in 1.0: the 0.2.5 methods `METHODS` names, their params and results
    translated. `client` must send `A2A-Version: 1.0`."""

    def __init__(self, client: A2AClient) -> None:
        self.url = client.url
        self._client = client

    @staticmethod
    def wire(method: str) -> str:
        """The method this client calls for 0.2.5's `method`."""
        return METHODS.get(method, method)

    async def call(self, method: str, params: Mapping[str, Any]) -> Any:
        result = await self._client.call(self.wire(method), params_to_v1(method, params))
        return result_from_v1(result) if method == "message/send" else task_from_v1(result)

    @property
    def last_event_id(self) -> str | None:
        return self._client.last_event_id

    async def stream(
        self, method: str, params: Mapping[str, Any], *, last_event_id: str | None = None
    ) -> AsyncGenerator[Any]:
        events = self._client.stream(
            self.wire(method), params_to_v1(method, params), last_event_id=last_event_id
        )
        async with contextlib.aclosing(events):
            async for result in events:
                yield result_from_v1(result)
