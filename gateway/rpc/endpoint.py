"""The JSON-RPC endpoints (`POST /` for the default agent, `POST /agents/{agent}`): the caller admitted,
the body read within its limit, the request dispatched, all as one server span (continuing the caller's
`traceparent`) named after the method, and counted by method and outcome."""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import trace
from starlette.datastructures import URL, Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from config.telemetry import annotate_task, caller_context, remember_span
from gateway.access.admission import Admission
from gateway.access.auth import Principal
from gateway.cards import REST_SEGMENT
from gateway.metrics import CLIENT_DISCONNECTED, OK, GatewayMetrics
from gateway.responses import error_http_response, unknown_agent
from gateway.rpc import rest
from gateway.rpc.dispatch import BodyTooLarge, Call, Dispatcher, Outcome, read_body
from gateway.streaming.sse import ErrorStream, EventStream
from protocol import (
    A2AError,
    InternalError,
    PayloadTooLargeError,
    ServerBusyError,
    error_response,
)
from protocol.jsonrpc import MethodNotAllowedError, UnsupportedMediaTypeError
from protocol.v1 import V1

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
# A client's Content-Type quoted in a 415 is cut to this many characters.
_QUOTE_CHARS = 100


class RpcEndpoint:
    def __init__(
        self,
        dispatchers: Mapping[str, Dispatcher],
        admission: Admission,
        metrics: GatewayMetrics,
        *,
        max_body_bytes: int,
        traced: bool,
    ) -> None:
        """`dispatchers`: agent name -> its methods. `traced`: an OpenTelemetry SDK records spans."""
        self._dispatchers = dispatchers
        self._admission = admission
        self._metrics = metrics
        self._max_body_bytes = max_body_bytes
        self._traced = traced

    async def serve(self, request: Request, agent: str) -> ASGIApp:
        """The response to a JSON-RPC request to `agent`."""
        return await self._serve(request, agent, None)

    async def serve_rest(self, request: Request, agent: str, path: str) -> ASGIApp:
        """The response to an HTTP+JSON request to `agent` (`path`: below the binding's base)."""
        return await self._serve(request, agent, path)

    async def _serve(self, request: Request, agent: str, rest_path: str | None) -> ASGIApp:
        dispatcher = self._dispatchers.get(agent)
        if dispatcher is None:
            return unknown_agent(agent, self._dispatchers)
        started = time.perf_counter()
        outcome = Outcome()
        # Untraced, a span is only worth its cost when the caller sent a trace to continue: its ids
        # then go on the request's log lines.
        with (
            tracer.start_as_current_span(
                "jsonrpc" if rest_path is None else "http+json",
                context=caller_context(request.headers),
                kind=trace.SpanKind.SERVER,
                attributes={"rpc.system": "jsonrpc", "a2a.agent": agent},
            )
            if self._traced or "traceparent" in request.headers
            else contextlib.nullcontext(trace.INVALID_SPAN)
        ) as span:
            remember_span(span)
            try:
                response = await self._respond(request, agent, dispatcher, outcome, rest_path)
            except BaseException:
                # The request was cancelled, or failed in a way nothing above caught: not a success.
                if outcome.code == OK:
                    outcome.failed(InternalError())
                raise
            finally:
                _end_span(span, outcome)
                self._metrics.observe_request(outcome.method, outcome.code, started)
        if (
            isinstance(response, EventStream)
            and outcome.method in ("message/stream", "SendStreamingMessage")
            and "last-event-id" not in request.headers
        ):
            response.first_token_from = started
        return response

    async def _respond(
        self,
        request: Request,
        agent: str,
        dispatcher: Dispatcher,
        outcome: Outcome,
        rest_path: str | None,
    ) -> ASGIApp:
        admitted = await self._admitted(request, agent, outcome, rest_path)
        if isinstance(admitted, Response):
            return admitted
        principal, body = admitted
        response: ASGIApp
        if rest_path is not None:
            call = Call(None, principal, request.headers.get("last-event-id"), V1)
            response = await rest.respond(dispatcher, request, rest_path, body, call, outcome)
        else:
            response = await dispatcher.respond(
                body,
                principal,
                request.headers.get("last-event-id"),
                outcome,
                requested_version(request),
            )
        if isinstance(response, ErrorStream):
            outcome.code = str(response.code)
        elif isinstance(response, EventStream):
            annotate_task(response.task_id)
        return response

    async def _admitted(
        self, request: Request, agent: str, outcome: Outcome, rest_path: str | None
    ) -> tuple[Principal, bytes] | Response:
        """The caller and the body it sent, or the answer that refuses them: the caller is admitted
        first (auth, agent, rate), then the body's declared type checked, then the body read within
        its limit."""
        limit = self._max_body_bytes
        try:
            principal = await self._admission.admit(request, agent)
            if rest_path is None or request.method == "POST":
                check_content_type(request.headers.get("content-type"))
            body = await read_body(request, limit)
        except ClientDisconnect:
            return _client_gone(agent, outcome)
        except BodyTooLarge:
            error = PayloadTooLargeError(
                f"Request payload validation error: body exceeds {limit} bytes"
            )
            outcome.failed(error)
            # The rest of the body is never read, so the connection cannot carry another request.
            if rest_path is not None:
                refusal = rest.error_response(error)
                refusal.headers["connection"] = "close"
                return refusal
            return error_http_response(error_response(None, error), error, {"connection": "close"})
        except A2AError as err:
            outcome.failed(err)
            refused = self._admission.refused(err)
            if rest_path is None:
                return refused
            # The same refusal in HTTP+JSON's form, with its challenge (WWW-Authenticate).
            refusal = rest.error_response(err)
            if "www-authenticate" in refused.headers:
                refusal.headers["www-authenticate"] = refused.headers["www-authenticate"]
            return refusal
        return principal, body


def _client_gone(agent: str, outcome: Outcome) -> Response:
    """The answer to a client that went away before its body arrived: nobody is left to read it, no
    error is ours, and it is worth no more than a debug line (and its own outcome in the metrics)."""
    outcome.code = CLIENT_DISCONNECTED
    logger.debug("A client of agent %s went away before its request's body arrived", agent)
    return Response(status_code=400, headers={"connection": "close"})


def json_media_type(content_type: str | None) -> bool:
    """Whether a request's Content-Type says JSON: `application/json` or any `application/*+json`
    (`application/a2a+json`, A2A 1.0's), parameters (`charset=utf-8`) aside. None (no header) passes:
    many clients send none."""
    if content_type is None:
        return True
    media = content_type.partition(";")[0].strip().lower()
    return media in ("", "application/json") or (
        media.startswith("application/") and media.endswith("+json")
    )


def check_content_type(content_type: str | None) -> None:
    """415 unless the body is declared JSON, or not declared at all."""
    if not json_media_type(content_type):
        quoted = repr(content_type)
        if len(quoted) > _QUOTE_CHARS:
            quoted = quoted[: _QUOTE_CHARS - 1] + "…"
        raise UnsupportedMediaTypeError(
            f"Request payload validation error: Content-Type {quoted} is not JSON; "
            "send application/json or application/a2a+json"
        )


def requested_version(request: Request) -> str | None:
    """The A2A version the caller asks for: the `A2A-Version` header, else the query parameter."""
    header = request.headers.get("a2a-version")
    if header or not request.scope["query_string"]:
        return header
    return request.query_params.get("A2A-Version")


def _end_span(span: trace.Span, outcome: Outcome) -> None:
    span.update_name(outcome.method)
    span.set_attribute("rpc.method", outcome.method)
    if outcome.code == CLIENT_DISCONNECTED:
        span.set_attribute("error.type", CLIENT_DISCONNECTED)
    elif outcome.code != OK:
        span.set_attribute("rpc.jsonrpc.error_code", int(outcome.code))
        # Only the server's own failures are span errors; a client's bad request is not.
        if outcome.code in {str(InternalError.code), str(ServerBusyError.code)}:
            span.set_status(trace.StatusCode.ERROR)


def endpoint_agent(path: str, default: str) -> str | None:
    """The agent whose JSON-RPC endpoint `path` is (`/` or `/agents/{agent}`), else None."""
    if path == "/":
        return default
    name = path.removeprefix("/agents/")
    if name != path and name and "/" not in name:
        return name
    return None


class RpcRoutes:
    """The router of the JSON-RPC endpoints, ahead of Starlette's (which it spares a fifth of a
    `tasks/get`'s CPU): a POST to an endpoint goes to `endpoint.serve`, any other method gets 405 (but
    a browser's GET of `/` is sent to the web console, `/ui/`), and
    an endpoint's path with a trailing slash is redirected (307) as Starlette's router would; every
    other request goes on to the app's routes. Innermost of the middleware, so CORS still applies;
    Starlette's ServerErrorMiddleware still answers 500 to an exception."""

    def __init__(
        self, app: ASGIApp, default_agent: str, endpoint: Callable[[], RpcEndpoint]
    ) -> None:
        """`endpoint()`: the endpoint of the running app (it exists while the lifespan runs)."""
        self._app = app
        self._default = default_agent
        self._endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            response = await self._response(scope, receive)
            if response is not None:
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)

    async def _response(self, scope: Scope, receive: Receive) -> ASGIApp | None:
        path = _route_path(scope)
        binding = _REST_PATH.fullmatch(path)
        if binding is not None:
            agent = binding["agent"] or self._default
            request = _Request(scope, receive)
            return await self._endpoint().serve_rest(request, agent, binding["path"])
        agent = endpoint_agent(path, self._default)
        if agent is None:
            if path == "/" or endpoint_agent(path.rstrip("/"), self._default) is None:
                return None
            if scope["method"] != "POST":
                return _not_allowed(scope["method"])
            url = URL(scope=scope)
            return RedirectResponse(url.replace(path=url.path.rstrip("/")), 307)
        if scope["method"] != "POST":
            if path == "/" and scope["method"] == "GET" and _wants_html(scope):
                # A browser at the address `make run` prints first: the web console.
                return RedirectResponse(scope.get("root_path", "") + "/ui/", 303)
            return _not_allowed(scope["method"])
        return await self._endpoint().serve(_Request(scope, receive), agent)


class _Headers(Headers):
    """A request's headers, each name looked up in a dict of its first values rather than by a scan
    of the whole list, as Starlette's `Headers` does on every lookup (and a JSON-RPC request's
    admission, checks and dispatch make half a dozen)."""

    def __init__(self, scope: Scope) -> None:
        super().__init__(scope=scope)
        self._first = {name: value for name, value in reversed(self.raw)}

    def get(self, key: str, default: Any = None) -> Any:
        value = self._first.get(key.lower().encode("latin-1"))
        return default if value is None else value.decode("latin-1")

    def __getitem__(self, key: str) -> str:
        value = self._first.get(key.lower().encode("latin-1"))
        if value is None:
            raise KeyError(key)
        return value.decode("latin-1")

    def __contains__(self, key: Any) -> bool:
        return isinstance(key, str) and key.lower().encode("latin-1") in self._first


class _Request(Request):
    """Starlette's request with `_Headers`."""

    @property
    def headers(self) -> Headers:
        if not hasattr(self, "_headers"):
            self._headers = _Headers(self.scope)
        return self._headers


def _wants_html(scope: Scope) -> bool:
    """Whether the request accepts an HTML page (a browser's navigation; JSON clients do not ask)."""
    return any(
        name == b"accept" and b"text/html" in value.lower() for name, value in scope["headers"]
    )


def _not_allowed(method: str) -> Response:
    """405 for a JSON-RPC endpoint asked with another HTTP method than POST, as a JSON-RPC error."""
    error = MethodNotAllowedError(
        f"Request payload validation error: {method} is not allowed on a JSON-RPC endpoint; "
        "send the request with POST"
    )
    return error_http_response(error_response(None, error), error, {"allow": "POST"})


# An HTTP+JSON request: below `/rest` (the default agent) or `/agents/{agent}/rest`.
_REST_PATH = re.compile(rf"(?:/agents/(?P<agent>[^/]+))?/{REST_SEGMENT}(?P<path>/.+)")


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path
