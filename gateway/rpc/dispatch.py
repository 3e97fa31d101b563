"""The JSON-RPC endpoint: parse and check the envelope (-32700/-32600), look the method up (-32601),
validate params (-32602), call the handler, and turn every outcome into one JSON-RPC response."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp

from config.telemetry import annotate_task
from gateway.access.auth import ANONYMOUS, Principal
from gateway.metrics import OK, method_label
from gateway.responses import JsonAnswer, error_http_response
from gateway.streaming.renderers import Renderer
from protocol import (
    METHOD_PARAMS,
    PROTOCOL_VERSION,
    A2AError,
    InternalError,
    InvalidParamsError,
    InvalidRequestError,
    MethodNotFoundError,
    RequestId,
    UnsupportedOperationError,
    VersionNotSupportedError,
    error_response,
    success_response,
)
from protocol.limits import check_params, read_json
from protocol.v1 import V1, V1_METHOD_PARAMS, GetExtendedAgentCardRequest, error_to_v1

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Call:
    """What a method needs beyond its params: who calls, for streams where to resume, and the A2A
    version the caller speaks (what its streams and push notifications are written in)."""

    request_id: RequestId
    principal: Principal = ANONYMOUS
    last_event_id: str | None = None
    version: str = PROTOCOL_VERSION
    # The stream view for this caller (None: 0.2.5's JSON-RPC frames).
    view: ViewFactory | None = None


Handler = Callable[[Any, Call], Awaitable[Any]]
# A streaming method answers with an ASGI app that serves the event stream.
StreamHandler = Callable[[Any, Call], Awaitable[ASGIApp]]
# The renderer of a stream: (request id, historyLength) -> Renderer.
ViewFactory = Callable[[RequestId, "int | None"], Renderer]

# The major.minor versions of A2A this gateway serves; an empty `A2A-Version` means 0.3 (1.0 §3.6.2).
SERVED_VERSIONS = ("0.2", "0.3", "1.0")
# A2A 0.3's JSON-RPC method beyond 0.2.5's nine.
V03_METHOD_PARAMS: dict[str, type[BaseModel]] = {
    "agent/getAuthenticatedExtendedCard": GetExtendedAgentCardRequest
}


def check_version(requested: str | None) -> None:
    """-32009 unless `requested` (the `A2A-Version` header or query parameter) is a version served
    here; patch numbers do not count (1.0 §3.6)."""
    if not requested:
        return
    major_minor = ".".join(requested.strip().split(".")[:2])
    if major_minor not in SERVED_VERSIONS:
        raise VersionNotSupportedError(
            f"A2A-Version {requested!r} is not supported; this gateway serves "
            f"{', '.join(SERVED_VERSIONS)}",
        )


class BodyTooLarge(Exception):
    pass


@dataclass(slots=True)
class Outcome:
    """What a request was and how it ended, for its span and metrics: the method (A2A's, else
    "other") and "ok" or the JSON-RPC error code."""

    method: str = "other"
    code: str = OK

    def failed(self, error: A2AError) -> None:
        self.code = str(error.code)


def parse_body(body: bytes) -> Any:
    """The body parsed (-32700 when it is not JSON)."""
    return read_json(body)


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


class Dispatcher:
    """One agent's JSON-RPC methods: 0.2.5's and 0.3's slash-style names (`handlers`,
    `stream_handlers`) and 1.0's PascalCase ones (`v1_handlers`, `v1_stream_handlers`), each answered
    in its own version's shapes."""

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        stream_handlers: Mapping[str, StreamHandler] | None = None,
        *,
        v1_handlers: Mapping[str, Handler] | None = None,
        v1_stream_handlers: Mapping[str, StreamHandler] | None = None,
        rest_handlers: Mapping[str, Handler | StreamHandler] | None = None,
    ) -> None:
        """`rest_handlers`: the 1.0 methods as the HTTP+JSON binding serves them (streams without a
        JSON-RPC envelope)."""
        self._handlers = {**handlers, **(v1_handlers or {})}
        self._stream_handlers = {**(stream_handlers or {}), **(v1_stream_handlers or {})}
        self._rest_handlers = rest_handlers or {}

    async def invoke_rest(self, method: str, raw_params: dict[str, Any], call: Call) -> Any:
        """A 1.0 method called over HTTP+JSON: its result, or the ASGI app of its stream."""
        handler = self._rest_handlers.get(method)
        if handler is None:
            raise UnsupportedOperationError(f"This operation is not supported: {method}")
        params = validate_params(method, V1_METHOD_PARAMS[method], raw_params)
        return await handler(params, call)

    async def respond(
        self,
        body: bytes,
        principal: Principal = ANONYMOUS,
        last_event_id: str | None = None,
        outcome: Outcome | None = None,
        version: str | None = None,
    ) -> ASGIApp:
        """The HTTP answer to a JSON-RPC request: a JSON response, or an event stream. `outcome` learns
        the method and how it ended; `version`: the request's `A2A-Version`."""
        answer = await self._answer(body, principal, last_event_id, outcome or Outcome(), version)
        if isinstance(answer, tuple):
            response, error = answer
            if error is not None:
                return error_http_response(response, error)
            return JsonAnswer(response)
        return answer

    async def dispatch(self, body: bytes, principal: Principal = ANONYMOUS) -> dict[str, Any]:
        """The JSON-RPC response to a request for a method that does not stream."""
        answer = await self._answer(body, principal, None, Outcome(), None)
        if not isinstance(answer, tuple):
            raise TypeError("dispatch() serves only methods that do not stream")
        return answer[0]

    async def _answer(
        self,
        body: bytes,
        principal: Principal,
        last_event_id: str | None,
        outcome: Outcome,
        version: str | None,
    ) -> tuple[dict[str, Any], A2AError | None] | ASGIApp:
        request_id: RequestId = None
        v1 = False
        try:
            request = parse_body(body)
            request_id = _request_id(request)
            method = _method(request)
            outcome.method = method_label(method)
            v1 = method in V1_METHOD_PARAMS
            check_version(version)
            params_model = _params_model(method)
            if "id" not in request:
                raise InvalidRequestError(
                    f"Request payload validation error: '{method}' needs an 'id'"
                )
            raw_params = request.get("params", {})
            params = validate_params(method, params_model, raw_params)
            call = Call(request_id, principal, last_event_id, _call_version(v1, version))
            stream_handler = self._stream_handlers.get(method)
            if stream_handler is not None:
                return await stream_handler(params, call)
            handler = self._handlers.get(method)
            if handler is None:
                raise UnsupportedOperationError(f"This operation is not supported: {method}")
            result = await handler(params, call)
            if isinstance(result, dict) and result.get("kind") == "task":
                annotate_task(result["id"], result["contextId"])
            return success_response(request_id, result), None
        except A2AError as err:
            outcome.failed(err)
            return _error_response(request_id, err, v1), err
        except Exception:
            logger.exception("Unexpected error answering JSON-RPC request %r", request_id)
            error = InternalError()
            outcome.failed(error)
            return _error_response(request_id, error, v1), None


def validate_params(method: str, model: type[BaseModel], raw_params: Any) -> Any:
    """`raw_params` read into `model` (-32602 naming every bad field), once its fields are within the
    input limits (`protocol.limits`; -32602 naming each one over)."""
    if not isinstance(raw_params, dict):
        raise InvalidParamsError("Invalid parameters: 'params' must be an object")
    check_params(method, raw_params)
    try:
        params = model.model_validate(raw_params)
    except ValidationError as err:
        raise InvalidParamsError(
            f"Invalid parameters for {method}",
            data=validation_error_data(model, err.errors(include_url=False)),
        ) from err
    _annotate(raw_params)
    return params


def _params_model(method: str) -> type[BaseModel]:
    model = METHOD_PARAMS.get(method) or V03_METHOD_PARAMS.get(method)
    model = model or V1_METHOD_PARAMS.get(method)
    if model is None:
        raise MethodNotFoundError(f"Method not found: '{method}'")
    return model


def _call_version(v1: bool, requested: str | None) -> str:
    if v1:
        return V1
    return "0.3" if requested and requested.startswith("0.3") else PROTOCOL_VERSION


def _error_response(request_id: RequestId, error: A2AError, v1: bool) -> dict[str, Any]:
    """The error in its method's version: 1.0's `data` is an array of typed details."""
    if v1:
        return {"jsonrpc": "2.0", "id": request_id, "error": error_to_v1(error)}
    return error_response(request_id, error)


def _annotate(params: dict[str, Any]) -> None:
    """The task a request names, for its span and log lines: `id` (tasks/*), `taskId` (push configs)
    or the message's `taskId` (a follow-up)."""
    message = params.get("message")
    ids = message if isinstance(message, dict) else params
    task_id = params.get("id") if "id" in params else ids.get("taskId")
    context_id = ids.get("contextId")
    if isinstance(task_id, str):
        annotate_task(task_id, context_id if isinstance(context_id, str) else None)


def _request_id(request: Any) -> RequestId:
    """The id to echo: checked before anything else so every later error can carry it."""
    if not isinstance(request, dict):
        raise InvalidRequestError(
            "Request payload validation error: the body must be a JSON-RPC request object"
        )
    request_id: RequestId = request.get("id")
    if "id" in request and not _valid_id(request_id):
        raise InvalidRequestError(
            "Request payload validation error: 'id' must be a string or an integer"
        )
    return request_id


def _method(request: dict[str, Any]) -> str:
    if request.get("jsonrpc") != "2.0":
        raise InvalidRequestError("Request payload validation error: 'jsonrpc' must be \"2.0\"")
    method = request.get("method")
    if not isinstance(method, str):
        raise InvalidRequestError("Request payload validation error: 'method' must be a string")
    return method


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it is known to exceed `limit` bytes (never read whole)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks = []
    size = 0
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def validation_error_data(model: type[BaseModel], errors: list[Any]) -> list[dict[str, str]]:
    """Pydantic errors as `{"field", "message"}` pairs for the `data` of a -32602 (never a traceback)."""
    return [
        {
            "field": ".".join(str(part) for part in error["loc"]) or model.__name__,
            "message": error["msg"],
        }
        for error in errors
    ]
