"""The gateway's HTTP/1.1 under uvicorn: uvicorn's httptools protocol, with a response's head and the
first part of its body written to the socket together.

uvicorn writes a response's status line and headers when the app sends `http.response.start`, and its
body with each `http.response.body`: two writes, so two TCP segments, for a JSON answer. Each segment
costs the kernel (on loopback, the receiver's side too) about as much as the gateway's own work on a
`tasks/get` at C = 8. Here a response that declares a non-empty Content-Length keeps its head until the
first body message and writes both at once; anything else (chunked, HEAD, an empty body) is written
as uvicorn writes it. What reaches the client is byte for byte the same."""

from __future__ import annotations

from typing import Any

from uvicorn._types import ASGI3Application, ASGISendEvent
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


class JoinedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's `HttpToolsProtocol` whose requests are served by `_JoinedCycle` (`uvicorn.Config`'s
    `http`)."""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        # Every cycle, pipelined ones included, starts here before its app runs.
        cycle.__class__ = _JoinedCycle
        super()._start_asgi_task(cycle, app)


class _JoinedCycle(RequestResponseCycle):
    # The response's head, kept for the first body message.
    _head: bytes | None = None

    async def send(self, message: ASGISendEvent) -> None:
        head = self._head
        if head is not None:
            self._head = None
            if message["type"] == "http.response.body":
                # uvicorn counts the body's bytes against the declared Content-Length.
                self.expected_content_length += len(head)
                message = {**message, "body": b"".join((head, message.get("body", b"")))}
            elif not self.disconnected:
                self.transport.write(head)
        elif message["type"] == "http.response.start" and not self.response_started:
            await self._start(message)
            return
        await super().send(message)

    async def _start(self, message: ASGISendEvent) -> None:
        """uvicorn's handling of the start, with the head it writes caught rather than sent."""
        transport = self.transport
        caught = _Caught()
        self.transport = caught  # type: ignore[assignment]
        try:
            await super().send(message)
        finally:
            self.transport = transport
        if (
            self.chunked_encoding is False
            and self.expected_content_length > 0
            and self.scope["method"] != "HEAD"
        ):
            self._head = caught.data
        elif caught.data:
            transport.write(caught.data)


class _Caught:
    """Stands in for the transport while uvicorn writes a response's head."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: Any) -> None:
        self.data += data
