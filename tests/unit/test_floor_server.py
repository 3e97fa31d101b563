"""`bench.floor_server`: the floor under `bench.compare`'s tasks/get answers every request with the
given bytes, once it has read the request's body."""

from __future__ import annotations

import httpx

from bench.floor_server import create_app

ANSWER = b'{"jsonrpc":"2.0","id":1,"result":{"id":"t","kind":"task"}}'


async def test_the_floor_answers_every_request_with_the_given_bytes() -> None:
    transport = httpx.ASGITransport(app=create_app(ANSWER))
    async with httpx.AsyncClient(transport=transport, base_url="http://floor") as http:
        for body in (b"", b'{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"id":"t"}}'):
            response = await http.post("/", content=body)
            assert (response.status_code, response.content) == (200, ANSWER)
            assert response.headers["content-type"] == "application/json"
            assert response.headers["content-length"] == str(len(ANSWER))
