"""JSON answers over HTTP, shared by every route: a JSON body, and a JSON-RPC error with the HTTP status
its error asks for."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from protocol import (
    A2AError,
    InternalError,
    MethodNotFoundError,
    RateLimitedError,
    ServerBusyError,
    error_response,
)


def json_response(
    content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(content),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


class JsonAnswer:
    """A 200 `application/json` answer, sent as Starlette's `Response` sends it (the same head and
    body) without building one: the JSON-RPC successes, the requests served most often."""

    __slots__ = ("body",)

    def __init__(self, content: Any) -> None:
        self.body = orjson.dumps(content)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(self.body)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self.body})


def error_http_response(
    response: dict[str, Any], error: A2AError, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON-RPC error response with the HTTP status its error asks for (200 for most; 401, 403, 413,
    429, 503 for those the HTTP layer must see), and `Retry-After` where waiting helps."""
    extra = dict(headers or {})
    if isinstance(error, RateLimitedError | ServerBusyError):
        extra["retry-after"] = str(error.retry_after)
    elif error.http_status == 503:
        extra["retry-after"] = "1"
    return json_response(response, error.http_status, extra or None)


def unavailable(error: InternalError) -> Response:
    """503 with `Retry-After: 1`: the gateway cannot answer now, any replica may soon."""
    return json_response(error_response(None, error), 503, {"retry-after": "1"})


def unknown_agent(name: str, known: Iterable[str]) -> Response:
    """404 for a path naming an agent this gateway does not have."""
    error = MethodNotFoundError(
        f"No agent named '{name}' at this gateway; its agents: {', '.join(sorted(known))}"
    )
    return json_response(error_response(None, error), 404)
