"""The A2A 1.0 codec: 1.0 requests read into the internal (0.2.5) model, and the internal model written
out as 1.0 JSON (the proto's JSON mapping: camelCase, no `kind`, flattened parts, `TASK_STATE_*`).

Pure translation: the workflows, workers, Redis log and hub never see 1.0 shapes. The gateway uses it
at the edge; the worker uses it for push notifications registered by 1.0 clients.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from protocol.jsonrpc import A2AError, InvalidParamsError
from protocol.types import (
    DataPart,
    FilePart,
    FileWithBytes,
    FileWithUri,
    Message,
    Part,
    PushNotificationAuthenticationInfo,
    PushNotificationConfig,
    TaskId,
    TaskState,
    TextPart,
)

V1 = "1.0"
ERROR_DOMAIN = "a2a-protocol.org"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"

_STATES = {
    TaskState.SUBMITTED: "TASK_STATE_SUBMITTED",
    TaskState.WORKING: "TASK_STATE_WORKING",
    TaskState.INPUT_REQUIRED: "TASK_STATE_INPUT_REQUIRED",
    TaskState.COMPLETED: "TASK_STATE_COMPLETED",
    TaskState.CANCELED: "TASK_STATE_CANCELED",
    TaskState.FAILED: "TASK_STATE_FAILED",
    TaskState.REJECTED: "TASK_STATE_REJECTED",
    TaskState.AUTH_REQUIRED: "TASK_STATE_AUTH_REQUIRED",
    TaskState.UNKNOWN: "TASK_STATE_UNSPECIFIED",
}
STATES_FROM_V1 = {v1: state for state, v1 in _STATES.items() if state is not TaskState.UNKNOWN}
_ROLES = {"user": "ROLE_USER", "agent": "ROLE_AGENT"}

# The reason of each A2A error in a 1.0 `google.rpc.ErrorInfo` (spec §11.6), by JSON-RPC code.
REASONS = {
    -32001: "TASK_NOT_FOUND",
    -32002: "TASK_NOT_CANCELABLE",
    -32003: "PUSH_NOTIFICATION_NOT_SUPPORTED",
    -32004: "UNSUPPORTED_OPERATION",
    -32005: "CONTENT_TYPE_NOT_SUPPORTED",
    -32006: "INVALID_AGENT_RESPONSE",
    -32007: "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
    -32008: "EXTENSION_SUPPORT_REQUIRED",
    -32009: "VERSION_NOT_SUPPORTED",
}


# ---- internal -> 1.0 ------------------------------------------------------------------------


def state_to_v1(state: str) -> str:
    return _STATES[TaskState(state)]


def part_to_v1(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("kind")
    out: dict[str, Any] = {}
    if kind == "text":
        out["text"] = part["text"]
    elif kind == "data":
        out["data"] = part["data"]
    else:
        file = part["file"]
        if "bytes" in file:
            out["raw"] = file["bytes"]
        else:
            out["url"] = file["uri"]
        if "name" in file:
            out["filename"] = file["name"]
        if "mimeType" in file:
            out["mediaType"] = file["mimeType"]
    if part.get("metadata") is not None:
        out["metadata"] = part["metadata"]
    return out


def message_to_v1(message: dict[str, Any]) -> dict[str, Any]:
    out = {key: value for key, value in message.items() if key not in ("kind", "role", "parts")}
    out["role"] = _ROLES[message["role"]]
    out["parts"] = [part_to_v1(part) for part in message["parts"]]
    return out


def status_to_v1(status: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"state": state_to_v1(status["state"])}
    if status.get("message") is not None:
        out["message"] = message_to_v1(status["message"])
    if status.get("timestamp") is not None:
        out["timestamp"] = status["timestamp"]
    return out


def artifact_to_v1(artifact: dict[str, Any]) -> dict[str, Any]:
    return {**artifact, "parts": [part_to_v1(part) for part in artifact["parts"]]}


def task_to_v1(
    task: dict[str, Any], *, history_length: int | None = None, artifacts: bool = True
) -> dict[str, Any]:
    """A Task's 1.0 form. `history_length` keeps the last N messages (0: none, the field omitted);
    `artifacts` False omits them (ListTasks without `includeArtifacts`)."""
    out: dict[str, Any] = {
        "id": task["id"],
        "contextId": task["contextId"],
        "status": status_to_v1(task["status"]),
    }
    history = task.get("history") or []
    if history_length is not None:
        history = history[len(history) - history_length :] if history_length else []
    if history:
        out["history"] = [message_to_v1(message) for message in history]
    if artifacts and task.get("artifacts"):
        out["artifacts"] = [artifact_to_v1(artifact) for artifact in task["artifacts"]]
    if task.get("metadata") is not None:
        out["metadata"] = task["metadata"]
    return out


def status_update_to_v1(
    task_id: str, context_id: str, status: dict[str, Any], metadata: Any = None
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "taskId": task_id,
        "contextId": context_id,
        "status": status_to_v1(status),
    }
    if metadata is not None:
        event["metadata"] = metadata
    return {"statusUpdate": event}


def artifact_update_to_v1(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "artifactUpdate": {
            "taskId": event["taskId"],
            "contextId": event["contextId"],
            "artifact": artifact_to_v1(event["artifact"]),
            "append": bool(event.get("append")),
            "lastChunk": bool(event.get("lastChunk")),
        }
    }


def push_config_to_v1(task_id: str, config: PushNotificationConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"taskId": task_id, "url": config.url}
    if config.id is not None:
        out["id"] = config.id
    if config.token is not None:
        out["token"] = config.token
    auth = config.authentication
    if auth is not None:
        info: dict[str, Any] = {"scheme": auth.schemes[0] if auth.schemes else ""}
        if auth.credentials is not None:
            info["credentials"] = auth.credentials
        out["authentication"] = info
    return out


def error_details(error: A2AError) -> list[dict[str, Any]]:
    """The typed details a 1.0 error carries: an ErrorInfo for A2A's own errors, a BadRequest for
    invalid params that name their fields."""
    details: list[dict[str, Any]] = []
    reason = REASONS.get(error.code)
    if reason is not None:
        details.append({"@type": ERROR_INFO, "reason": reason, "domain": ERROR_DOMAIN})
    if isinstance(error, InvalidParamsError) and isinstance(error.data, list):
        violations = [
            {"field": item.get("field", ""), "description": item.get("message", "")}
            for item in error.data
            if isinstance(item, dict)
        ]
        details.append({"@type": BAD_REQUEST, "fieldViolations": violations})
    return details


def error_to_v1(error: A2AError) -> dict[str, Any]:
    """The JSON-RPC error object of a 1.0 response: `data` is an array of typed details."""
    wire: dict[str, Any] = {"code": error.code, "message": error.message}
    details = error_details(error)
    if details:
        wire["data"] = details
    return wire


def error_wire_to_v1(error: dict[str, Any]) -> dict[str, Any]:
    """A 0.2.5 JSON-RPC error object (as a task's log holds one) in its 1.0 form."""
    out: dict[str, Any] = {"code": error.get("code"), "message": error.get("message", "")}
    reason = REASONS.get(error.get("code", 0))
    if reason is not None:
        out["data"] = [{"@type": ERROR_INFO, "reason": reason, "domain": ERROR_DOMAIN}]
    return out


# ---- 1.0 -> internal ------------------------------------------------------------------------


class V1Model(BaseModel):
    """A 1.0 request object: camelCase, unknown fields ignored (spec §5.7)."""

    model_config = ConfigDict(extra="ignore")


class V1Part(V1Model):
    text: str | None = None
    raw: str | None = None
    url: str | None = None
    data: Any = None
    metadata: dict[str, Any] | None = None
    filename: str | None = None
    mediaType: str | None = None

    @model_validator(mode="after")
    def _one_content(self) -> V1Part:
        present = [name for name in ("text", "raw", "url") if getattr(self, name) is not None]
        if "data" in self.model_fields_set:
            present.append("data")
        if len(present) != 1:
            raise ValueError(
                "a part has exactly one of text, raw, url, data; "
                f"this one has {', '.join(present) or 'none'}"
            )
        if "data" in present and not isinstance(self.data, dict):
            raise ValueError("this gateway takes a data part's data as a JSON object")
        return self

    def internal(self) -> Part:
        if self.text is not None:
            return TextPart(text=self.text, metadata=self.metadata)
        if self.raw is not None:
            return FilePart(
                file=FileWithBytes(bytes=self.raw, name=self.filename, mimeType=self.mediaType),
                metadata=self.metadata,
            )
        if self.url is not None:
            return FilePart(
                file=FileWithUri(uri=self.url, name=self.filename, mimeType=self.mediaType),
                metadata=self.metadata,
            )
        return DataPart(data=self.data, metadata=self.metadata)


class V1Message(V1Model):
    messageId: str = Field(min_length=1)
    contextId: str | None = None
    taskId: TaskId | None = None
    role: Literal["ROLE_USER", "ROLE_AGENT"]
    parts: list[V1Part] = Field(min_length=1)
    metadata: dict[str, Any] | None = None
    extensions: list[str] | None = None
    referenceTaskIds: list[str] | None = None

    def internal(self) -> Message:
        return Message(
            role="user" if self.role == "ROLE_USER" else "agent",
            parts=[part.internal() for part in self.parts],
            messageId=self.messageId,
            taskId=self.taskId or None,
            contextId=self.contextId or None,
            referenceTaskIds=self.referenceTaskIds,
            extensions=self.extensions,
            metadata=self.metadata,
        )


class V1AuthenticationInfo(V1Model):
    scheme: str
    credentials: str | None = None


class V1PushConfig(V1Model):
    """`TaskPushNotificationConfig` (1.0): the config and its task in one object."""

    taskId: TaskId = ""
    id: str | None = None
    url: str
    token: str | None = None
    authentication: V1AuthenticationInfo | None = None

    def internal(self) -> PushNotificationConfig:
        auth = self.authentication
        return PushNotificationConfig(
            url=self.url,
            id=self.id or None,
            token=self.token,
            authentication=None
            if auth is None
            else PushNotificationAuthenticationInfo(
                schemes=[auth.scheme], credentials=auth.credentials
            ),
        )


class SendMessageConfiguration(V1Model):
    acceptedOutputModes: list[str] | None = None
    taskPushNotificationConfig: V1PushConfig | None = None
    historyLength: int | None = None
    returnImmediately: bool = False


class SendMessageRequest(V1Model):
    message: V1Message
    configuration: SendMessageConfiguration | None = None
    metadata: dict[str, Any] | None = None


class GetTaskRequest(V1Model):
    id: TaskId
    historyLength: int | None = None


class ListTasksRequest(V1Model):
    contextId: str | None = None
    status: str | None = None
    pageSize: int | None = None
    pageToken: str | None = None
    historyLength: int | None = None
    statusTimestampAfter: str | None = None
    includeArtifacts: bool | None = None


class CancelTaskRequest(V1Model):
    id: TaskId
    metadata: dict[str, Any] | None = None


class SubscribeToTaskRequest(V1Model):
    id: TaskId


class TaskPushConfigRequest(V1Model):
    """Get and Delete: the task and the config's id."""

    taskId: TaskId
    id: str = Field(min_length=1)


class ListTaskPushConfigsRequest(V1Model):
    taskId: TaskId
    pageSize: int | None = None
    pageToken: str | None = None


class GetExtendedAgentCardRequest(V1Model):
    pass


# 1.0 JSON-RPC method -> its params model (spec §9.4).
V1_METHOD_PARAMS: dict[str, type[BaseModel]] = {
    "SendMessage": SendMessageRequest,
    "SendStreamingMessage": SendMessageRequest,
    "GetTask": GetTaskRequest,
    "ListTasks": ListTasksRequest,
    "CancelTask": CancelTaskRequest,
    "SubscribeToTask": SubscribeToTaskRequest,
    "CreateTaskPushNotificationConfig": V1PushConfig,
    "GetTaskPushNotificationConfig": TaskPushConfigRequest,
    "ListTaskPushNotificationConfigs": ListTaskPushConfigsRequest,
    "DeleteTaskPushNotificationConfig": TaskPushConfigRequest,
    "GetExtendedAgentCard": GetExtendedAgentCardRequest,
}
V1_STREAMING = frozenset({"SendStreamingMessage", "SubscribeToTask"})
