"""A2A 1.0 over HTTP+JSON (spec §11): each route of §5.3 read into a 1.0 method call, answered with
the method's 1.0 result or stream, and errors as `google.rpc.Status` JSON with the HTTP status of
§5.4. Mounted at `<JSON-RPC endpoint>/rest` (`gateway.cards.REST_SEGMENT`), where it cannot collide
with the gateway's own paths."""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from gateway.rpc.dispatch import Call, Dispatcher, Outcome, check_version, parse_body
from protocol import (
    A2AError,
    InvalidRequestError,
    MethodNotFoundError,
    RateLimitedError,
    ServerBusyError,
)
from protocol.v1 import error_details

MEDIA_TYPE = "application/a2a+json"

# (HTTP method, path pattern, 1.0 method): spec §11.3. Subscribe answers GET too (the proto's binding).
_ROUTES: list[tuple[frozenset[str], re.Pattern[str], str]] = [
    (frozenset({"POST"}), re.compile(r"/message:send"), "SendMessage"),
    (frozenset({"POST"}), re.compile(r"/message:stream"), "SendStreamingMessage"),
    (frozenset({"GET"}), re.compile(r"/tasks"), "ListTasks"),
    (frozenset({"POST"}), re.compile(r"/tasks/(?P<id>[^/]+):cancel"), "CancelTask"),
    (frozenset({"POST", "GET"}), re.compile(r"/tasks/(?P<id>[^/]+):subscribe"), "SubscribeToTask"),
    (frozenset({"GET"}), re.compile(r"/tasks/(?P<id>[^/]+)"), "GetTask"),
    (
        frozenset({"POST"}),
        re.compile(r"/tasks/(?P<taskId>[^/]+)/pushNotificationConfigs"),
        "CreateTaskPushNotificationConfig",
    ),
    (
        frozenset({"GET"}),
        re.compile(r"/tasks/(?P<taskId>[^/]+)/pushNotificationConfigs"),
        "ListTaskPushNotificationConfigs",
    ),
    (
        frozenset({"GET"}),
        re.compile(r"/tasks/(?P<taskId>[^/]+)/pushNotificationConfigs/(?P<id>[^/]+)"),
        "GetTaskPushNotificationConfig",
    ),
    (
        frozenset({"DELETE"}),
        re.compile(r"/tasks/(?P<taskId>[^/]+)/pushNotificationConfigs/(?P<id>[^/]+)"),
        "DeleteTaskPushNotificationConfig",
    ),
    (frozenset({"GET"}), re.compile(r"/extendedAgentCard"), "GetExtendedAgentCard"),
]

# HTTP status and google.rpc code name of each error, by JSON-RPC code (spec §5.4).
_STATUS = {
    -32700: (400, "INVALID_ARGUMENT"),
    -32600: (400, "INVALID_ARGUMENT"),
    -32601: (404, "NOT_FOUND"),
    -32602: (400, "INVALID_ARGUMENT"),
    -32603: (500, "INTERNAL"),
    -32001: (404, "NOT_FOUND"),
    -32002: (400, "FAILED_PRECONDITION"),
    -32003: (400, "FAILED_PRECONDITION"),
    -32004: (400, "FAILED_PRECONDITION"),
    -32005: (400, "INVALID_ARGUMENT"),
    -32006: (500, "INTERNAL"),
    -32007: (400, "FAILED_PRECONDITION"),
    -32008: (400, "FAILED_PRECONDITION"),
    -32009: (400, "FAILED_PRECONDITION"),
}
_STATUS_NAMES = {
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
}


def route(http_method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """The 1.0 method a request is and its path parameters; None when no route matches the path
    (a path that matches for another HTTP method raises -32601 naming the allowed ones)."""
    allowed: set[str] = set()
    for methods, pattern, method in _ROUTES:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        if http_method in methods:
            return method, match.groupdict()
        allowed |= methods
    if allowed:
        raise MethodNotFoundError(
            f"{http_method} is not allowed on {path}; use {', '.join(sorted(allowed))}"
        )
    return None


async def respond(
    dispatcher: Dispatcher,
    request: Request,
    path: str,
    body: bytes,
    call: Call,
    outcome: Outcome,
) -> ASGIApp:
    """The HTTP+JSON answer to `request` (a route below the binding's base, `path`)."""
    try:
        found = route(request.method, path)
        if found is None:
            raise MethodNotFoundError(f"No A2A HTTP+JSON route {request.method} {path}")
        method, path_params = found
        outcome.method = method
        check_version(request.headers.get("a2a-version") or request.query_params.get("A2A-Version"))
        params = _params(request, body, path_params)
        result = await dispatcher.invoke_rest(method, params, call)
    except A2AError as err:
        outcome.failed(err)
        return error_response(err)
    if isinstance(result, dict):
        return Response(orjson.dumps(result), media_type=MEDIA_TYPE)
    stream: ASGIApp = result
    return stream


def _params(request: Request, body: bytes, path_params: dict[str, str]) -> dict[str, Any]:
    """A method's params: the JSON body (POST), else the query parameters, with the path's."""
    params: dict[str, Any] = {}
    if request.method == "POST" and body.strip():
        parsed = parse_body(body)
        if not isinstance(parsed, dict):
            raise InvalidRequestError(
                "Request payload validation error: the body must be an object"
            )
        params = parsed
    elif request.method != "POST":
        params = {key: value for key, value in request.query_params.items() if key != "A2A-Version"}
    return {**params, **path_params}


def error_response(error: A2AError) -> Response:
    """`{"error": {code, status, message, details}}` (spec §11.6) with the error's HTTP status."""
    http_status, status = _STATUS.get(error.code, (500, "INTERNAL"))
    if error.http_status != 200:
        http_status = error.http_status
        status = _STATUS_NAMES.get(http_status, status)
    body: dict[str, Any] = {
        "error": {
            "code": http_status,
            "status": status,
            "message": error.message,
            "details": error_details(error),
        }
    }
    headers = {}
    if isinstance(error, RateLimitedError | ServerBusyError):
        headers["retry-after"] = str(error.retry_after)
    elif http_status == 503:
        headers["retry-after"] = "1"
    return Response(
        orjson.dumps(body), status_code=http_status, headers=headers, media_type=MEDIA_TYPE
    )
