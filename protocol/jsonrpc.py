"""JSON-RPC 2.0 envelope, the A2A 0.2.5 method table and its error codes (PROTOCOL.md §3, §4, §6)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from protocol.types import (
    DeleteTaskPushNotificationConfigParams,
    GetTaskPushNotificationConfigParams,
    ListTaskPushNotificationConfigParams,
    MessageSendParams,
    TaskIdParams,
    TaskPushNotificationConfig,
    TaskQueryParams,
)

RequestId = str | int | None

# A2A 0.2.5 has exactly these nine JSON-RPC methods (PROTOCOL.md §4); each maps to its params model.
METHOD_PARAMS: dict[str, type[BaseModel]] = {
    "message/send": MessageSendParams,
    "message/stream": MessageSendParams,
    "tasks/get": TaskQueryParams,
    "tasks/cancel": TaskIdParams,
    "tasks/pushNotificationConfig/set": TaskPushNotificationConfig,
    "tasks/pushNotificationConfig/get": GetTaskPushNotificationConfigParams,
    "tasks/pushNotificationConfig/list": ListTaskPushNotificationConfigParams,
    "tasks/pushNotificationConfig/delete": DeleteTaskPushNotificationConfigParams,
    "tasks/resubscribe": TaskIdParams,
}


class A2AError(Exception):
    """An error a handler raises; converted once, at the boundary, into a JSON-RPC error object."""

    code: int = -32603
    default_message: str = "Internal error"
    # The HTTP status of a response that carries this error (JSON-RPC errors are HTTP 200).
    http_status: int = 200

    def __init__(self, message: str | None = None, data: Any = None) -> None:
        self.message = message or self.default_message
        self.data = data
        super().__init__(self.message)

    def to_wire(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class JSONParseError(A2AError):
    code = -32700
    default_message = "Invalid JSON payload"


class InvalidRequestError(A2AError):
    code = -32600
    default_message = "Request payload validation error"


class MethodNotFoundError(A2AError):
    code = -32601
    default_message = "Method not found"


class InvalidParamsError(A2AError):
    code = -32602
    default_message = "Invalid parameters"


class TaskEndedError(InvalidParamsError):
    """A message for a task in a terminal state: -32602 in 0.2.5 and 0.3 (PROTOCOL.md), -32004 in
    1.0 (spec §3.1.1)."""


class InternalError(A2AError):
    code = -32603
    default_message = "Internal error"


class TaskNotFoundError(A2AError):
    code = -32001
    default_message = "Task not found"


class TaskNotCancelableError(A2AError):
    code = -32002
    default_message = "Task cannot be canceled"


class PushNotificationNotSupportedError(A2AError):
    code = -32003
    default_message = "Push Notification is not supported"


class UnsupportedOperationError(A2AError):
    code = -32004
    default_message = "This operation is not supported"


class ContentTypeNotSupportedError(A2AError):
    code = -32005
    default_message = "Incompatible content types"


class InvalidAgentResponseError(A2AError):
    code = -32006
    default_message = "Invalid agent response"


class ExtendedCardNotConfiguredError(A2AError):
    """A2A 0.3 and 1.0: the agent has no authenticated extended card."""

    code = -32007
    default_message = "Authenticated Extended Card is not configured"


class ExtensionSupportRequiredError(A2AError):
    code = -32008
    default_message = "Extension support required"


class VersionNotSupportedError(A2AError):
    """A2A 1.0: the request's `A2A-Version` is not one this gateway serves."""

    code = -32009
    default_message = "This version is not supported"


class ServerBusyError(A2AError):
    """Server-defined (-32000..-32099 are reserved for that): this gateway process already holds its
    configured maximum of concurrent streams, or Temporal is not taking new work fast enough.
    Answered with HTTP 503 and `Retry-After` (whole seconds)."""

    code = -32000
    default_message = "Server busy"
    http_status = 503

    def __init__(self, message: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnauthenticatedError(A2AError):
    """Server-defined: no credential, or one the gateway does not accept. HTTP 401 with
    `WWW-Authenticate`; the body is never read first, so the response id is null."""

    code = -32010
    default_message = "Authentication required"
    http_status = 401


class ForbiddenError(A2AError):
    """Server-defined: the caller is authenticated but may not use this agent. HTTP 403."""

    code = -32011
    default_message = "Forbidden"
    http_status = 403


class RateLimitedError(A2AError):
    """Server-defined: the caller exceeded its request rate or its concurrent streams. HTTP 429 with
    `Retry-After` (whole seconds)."""

    code = -32012
    default_message = "Rate limit exceeded"
    http_status = 429

    def __init__(self, message: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FellBehindError(A2AError):
    """Server-defined: a subscription's buffer overflowed because the client did not read fast enough
    (the `/ws` feed; `data.after` says where to resume)."""

    code = -32013
    default_message = "Fell behind"


class PayloadTooLargeError(A2AError):
    """The request body exceeds the configured limit; answered (HTTP 413) before the rest is read."""

    code = -32600
    default_message = "Request payload validation error"
    http_status = 413


class MethodNotAllowedError(A2AError):
    """An HTTP method other than POST on a JSON-RPC endpoint: HTTP 405 with `Allow: POST`."""

    code = -32600
    default_message = "Request payload validation error: JSON-RPC requests use POST"
    http_status = 405


class UnsupportedMediaTypeError(A2AError):
    """A body declared as something other than JSON: HTTP 415, before the body is read."""

    code = -32600
    default_message = "Request payload validation error: the body must be JSON"
    http_status = 415


def success_response(request_id: RequestId, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error_response(request_id: RequestId, error: A2AError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_wire()}
