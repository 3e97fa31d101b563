"""`python -m bench.floor_server --port P --answer FILE`: the floor `bench.compare` puts under its
`tasks/get` figures. A bare ASGI app under uvicorn, with the reference's settings (uvicorn's defaults,
access log off), that reads each request whole and answers it with FILE's bytes: the gateway's own
answer to the benchmark's `tasks/get`, so that the two send the same bytes. No app under uvicorn
answers faster than it, whatever its framework. SIGTERM/SIGINT stop it."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from bench.servers import serve


def create_app(answer: bytes) -> ASGIApp:
    """The ASGI app: `answer` to every HTTP request, once its body has been read."""
    head = [(b"content-length", str(len(answer)).encode()), (b"content-type", b"application/json")]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body", False):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": answer})

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--answer", type=Path, required=True, help="the bytes of every answer")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    serve(create_app(args.answer.read_bytes()), args.host, args.port, "floor server")


if __name__ == "__main__":
    main()
