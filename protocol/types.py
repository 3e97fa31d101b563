"""A2A v0.2.5 wire types, spelled exactly as the JSON schema (`specification/json/a2a.json`)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PROTOCOL_VERSION = "0.2.5"

# A task id a request names. The gateway assigns UUIDs; a longer id names no task, and one of tens of
# kilobytes would reach Temporal as an oversized gRPC header (an HTTP/2 reset, retried, then -32603).
TaskId = Annotated[str, Field(max_length=1024)]


class Wire(BaseModel):
    """Base of every wire type: unknown fields are tolerated and dropped (PROTOCOL.md §3)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


class TaskState(StrEnum):
    SUBMITTED = "submitted"
    WORKING = "working"
    INPUT_REQUIRED = "input-required"
    COMPLETED = "completed"
    CANCELED = "canceled"
    FAILED = "failed"
    REJECTED = "rejected"
    AUTH_REQUIRED = "auth-required"
    UNKNOWN = "unknown"


# SPEC §6.1: a task in one of these states "can't be restarted".
TERMINAL_STATES = frozenset(
    {
        TaskState.COMPLETED,
        TaskState.CANCELED,
        TaskState.FAILED,
        TaskState.REJECTED,
        TaskState.UNKNOWN,
    }
)
# States that end a turn: the agent waits for the client (PROTOCOL.md §7 item 3).
INTERRUPTED_STATES = frozenset({TaskState.INPUT_REQUIRED, TaskState.AUTH_REQUIRED})


class TextPart(Wire):
    kind: Literal["text"] = "text"
    text: str
    metadata: dict[str, Any] | None = None


class FileWithBytes(Wire):
    bytes: str
    name: str | None = None
    mimeType: str | None = None


class FileWithUri(Wire):
    uri: str
    name: str | None = None
    mimeType: str | None = None


class FilePart(Wire):
    kind: Literal["file"] = "file"
    file: FileWithBytes | FileWithUri
    metadata: dict[str, Any] | None = None


class DataPart(Wire):
    kind: Literal["data"] = "data"
    data: dict[str, Any]
    metadata: dict[str, Any] | None = None


Part = Annotated[TextPart | FilePart | DataPart, Field(discriminator="kind")]


class Message(Wire):
    role: Literal["user", "agent"]
    # The spec text says a message "must contain at least one part".
    parts: list[Part] = Field(min_length=1)
    messageId: str = Field(min_length=1)
    taskId: TaskId | None = None
    contextId: str | None = None
    referenceTaskIds: list[str] | None = None
    extensions: list[str] | None = None
    metadata: dict[str, Any] | None = None
    # PROTOCOL.md §10.2: a missing kind defaults to "message" for interop.
    kind: Literal["message"] = "message"


class TaskStatus(Wire):
    state: TaskState
    message: Message | None = None
    timestamp: str | None = None


class Artifact(Wire):
    artifactId: str
    parts: list[Part] = Field(min_length=1)
    name: str | None = None
    description: str | None = None
    extensions: list[str] | None = None
    metadata: dict[str, Any] | None = None


class Task(Wire):
    id: str
    contextId: str
    status: TaskStatus
    history: list[Message] | None = None
    artifacts: list[Artifact] | None = None
    metadata: dict[str, Any] | None = None
    kind: Literal["task"] = "task"


class TaskStatusUpdateEvent(Wire):
    taskId: str
    contextId: str
    status: TaskStatus
    # Required by the schema although the spec table calls it optional: always sent (PROTOCOL.md §9).
    final: bool
    metadata: dict[str, Any] | None = None
    kind: Literal["status-update"] = "status-update"


class TaskArtifactUpdateEvent(Wire):
    taskId: str
    contextId: str
    artifact: Artifact
    append: bool | None = None
    lastChunk: bool | None = None
    metadata: dict[str, Any] | None = None
    kind: Literal["artifact-update"] = "artifact-update"


class PushNotificationAuthenticationInfo(Wire):
    schemes: list[str]
    credentials: str | None = None


class PushNotificationConfig(Wire):
    url: str
    id: str | None = None
    token: str | None = None
    authentication: PushNotificationAuthenticationInfo | None = None


class TaskPushNotificationConfig(Wire):
    taskId: TaskId
    pushNotificationConfig: PushNotificationConfig


class StoredPushConfig(BaseModel):
    """A push notification config as the gateway stores it in Redis (`task_push_key`) and the worker
    reads it at delivery: credentials in full, and when it was first set (lists keep that order)."""

    created_ns: int
    config: PushNotificationConfig
    # The A2A version of the client that registered it: notifications are written in that version.
    version: str = PROTOCOL_VERSION

    def masked(self) -> PushNotificationConfig:
        """The config as responses show it: credentials never come back."""
        auth = self.config.authentication
        if auth is None or auth.credentials is None:
            return self.config
        return self.config.model_copy(
            update={"authentication": auth.model_copy(update={"credentials": MASKED})}
        )


MASKED = "********"


# ---- method params -------------------------------------------------------------------------


class MessageSendConfiguration(Wire):
    # Required in 0.2.5, optional from 0.2.6; accepted when absent so newer clients interoperate.
    acceptedOutputModes: list[str] | None = None
    historyLength: int | None = None
    pushNotificationConfig: PushNotificationConfig | None = None
    blocking: bool | None = None


class MessageSendParams(Wire):
    message: Message
    configuration: MessageSendConfiguration | None = None
    metadata: dict[str, Any] | None = None


class TaskIdParams(Wire):
    id: TaskId
    metadata: dict[str, Any] | None = None


class TaskQueryParams(Wire):
    id: TaskId
    historyLength: int | None = None
    metadata: dict[str, Any] | None = None


class GetTaskPushNotificationConfigParams(Wire):
    id: TaskId
    pushNotificationConfigId: str | None = None
    metadata: dict[str, Any] | None = None


class ListTaskPushNotificationConfigParams(Wire):
    id: TaskId
    metadata: dict[str, Any] | None = None


class DeleteTaskPushNotificationConfigParams(Wire):
    id: TaskId
    pushNotificationConfigId: str
    metadata: dict[str, Any] | None = None


# ---- agent card ----------------------------------------------------------------------------


class AgentProvider(Wire):
    organization: str
    url: str


class AgentExtension(Wire):
    uri: str
    description: str | None = None
    required: bool | None = None
    params: dict[str, Any] | None = None


class AgentCapabilities(Wire):
    streaming: bool | None = None
    pushNotifications: bool | None = None
    stateTransitionHistory: bool | None = None
    extensions: list[AgentExtension] | None = None


class AgentInterface(Wire):
    url: str
    transport: str


class AgentSkill(Wire):
    id: str
    name: str
    description: str
    tags: list[str]
    examples: list[str] | None = None
    inputModes: list[str] | None = None
    outputModes: list[str] | None = None


class APIKeySecurityScheme(Wire):
    type: Literal["apiKey"] = "apiKey"
    in_: Literal["query", "header", "cookie"] = Field(alias="in")
    name: str
    description: str | None = None


class HTTPAuthSecurityScheme(Wire):
    type: Literal["http"] = "http"
    scheme: str
    bearerFormat: str | None = None
    description: str | None = None


SecurityScheme = Annotated[
    APIKeySecurityScheme | HTTPAuthSecurityScheme, Field(discriminator="type")
]


class AgentCard(Wire):
    protocolVersion: str = PROTOCOL_VERSION
    name: str
    description: str
    url: str
    preferredTransport: str | None = "JSONRPC"
    additionalInterfaces: list[AgentInterface] | None = None
    iconUrl: str | None = None
    provider: AgentProvider | None = None
    version: str
    documentationUrl: str | None = None
    capabilities: AgentCapabilities
    securitySchemes: dict[str, SecurityScheme] | None = None
    security: list[dict[str, list[str]]] | None = None
    defaultInputModes: list[str]
    defaultOutputModes: list[str]
    skills: list[AgentSkill]
    supportsAuthenticatedExtendedCard: bool | None = None


def with_history_length(task: Task, history_length: int | None) -> Task:
    """The task as a reader asked for it: `historyLength` N keeps the last N messages (PROTOCOL.md §8).

    Absent means the full history; 0 means an empty one; callers reject negative values.
    """
    if history_length is None:
        return task
    history = task.history or []
    kept = history[len(history) - history_length :] if history_length else []
    return task.model_copy(update={"history": kept})


def with_metadata(task: Task, metadata: dict[str, Any]) -> Task:
    """The task with `metadata` merged into its own (the new keys win)."""
    return task.model_copy(update={"metadata": {**(task.metadata or {}), **metadata}})


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, millisecond precision: the form of `TaskStatus.timestamp`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
