"""The JSON-RPC endpoints' router answers what Starlette's router would for a method or path it does not
serve (no lifespan: nothing here reaches Temporal or Redis)."""

from __future__ import annotations

import httpx
import orjson
import pytest

from gateway.app import create_app
from gateway.rpc.endpoint import json_media_type
from gateway.settings import GatewaySettings


def not_allowed(method: str) -> str:
    """A 405's body: a JSON-RPC error (the request's id is unknown)."""
    message = (
        f"Request payload validation error: {method} is not allowed on a JSON-RPC endpoint; "
        "send the request with POST"
    )
    return orjson.dumps(
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message}}
    ).decode()


JSON_405 = {"allow": "POST", "content-type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path", "status", "headers", "body"),
    [
        ("GET", "/", 405, JSON_405, not_allowed("GET")),
        ("PUT", "/agents/echo", 405, JSON_405, not_allowed("PUT")),
        ("DELETE", "/", 405, JSON_405, not_allowed("DELETE")),
        ("GET", "/agents/unknown", 405, JSON_405, not_allowed("GET")),
        # A trailing slash: POST is redirected, any other method refused at once.
        ("PUT", "/agents/echo/", 405, JSON_405, not_allowed("PUT")),
        ("GET", "/agents/echo/", 405, JSON_405, not_allowed("GET")),
        ("POST", "/agents/echo/", 307, {"location": "http://gateway/agents/echo"}, ""),
    ],
)
async def test_rpc_routes_refuse_what_they_do_not_serve(
    method: str, path: str, status: int, headers: dict[str, str], body: str
) -> None:
    app = create_app(GatewaySettings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.request(method, path)
    assert (response.status_code, response.text) == (status, body)
    assert {name: response.headers[name] for name in headers} == headers


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [
        (None, True),
        ("", True),
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/a2a+json", True),
        ("application/json-rpc+json", True),
        ("application/x-www-form-urlencoded", False),
        ("text/plain", False),
        ("text/json", False),
        ("application/jsonp", False),
        ("multipart/form-data; boundary=x", False),
    ],
)
def test_json_media_types(content_type: str | None, accepted: bool) -> None:
    assert json_media_type(content_type) is accepted
