"""The JSON-RPC endpoints' router answers what Starlette's router would for a method or path it does not
serve (no lifespan: nothing here reaches Temporal or Redis)."""

from __future__ import annotations

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings


@pytest.mark.parametrize(
    ("method", "path", "status", "headers", "body"),
    [
        ("GET", "/", 405, {"allow": "POST"}, "Method Not Allowed"),
        ("PUT", "/agents/echo", 405, {"allow": "POST"}, "Method Not Allowed"),
        ("GET", "/agents/unknown", 405, {"allow": "POST"}, "Method Not Allowed"),
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
