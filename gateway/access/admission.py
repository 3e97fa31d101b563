"""Who gets in: every request, browser stream and WebSocket is authenticated, checked against the agents
its credential may use, and counted against its rate before it is served."""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.responses import Response

from gateway.access.auth import Authenticator, Principal
from gateway.access.rate_limit import RateLimiter
from gateway.responses import error_http_response
from protocol import A2AError, ForbiddenError, UnauthenticatedError, error_response


class Admission:
    def __init__(self, auth: Authenticator, limiter: RateLimiter | None) -> None:
        self.auth = auth
        self._limiter = limiter

    async def admit(
        self, request: HTTPConnection, agent: str | None, *, browser: bool = False
    ) -> Principal:
        """The caller, once authenticated, allowed to use `agent` and within its rate. Browser
        streams may carry the credential in the query string (EventSource cannot set headers)."""
        limiter = self._limiter
        try:
            principal = await self.auth.authenticate(
                request.headers, request.query_params if browser else None
            )
        except UnauthenticatedError:
            # Failed attempts count against the client's address: guessing keys is rate limited.
            if limiter is not None:
                await limiter.admit(_address(request))
            raise
        if agent is not None and not principal.may_use(agent):
            raise ForbiddenError(f"Forbidden: this credential may not use agent '{agent}'")
        if limiter is not None:
            await limiter.admit(principal.id if self.auth.enabled else _address(request))
        return principal

    def refused(self, err: A2AError) -> Response:
        """The HTTP answer to a caller refused with `err`."""
        headers = None
        if isinstance(err, UnauthenticatedError):
            headers = {"www-authenticate": self.auth.www_authenticate()}
        return error_http_response(error_response(None, err), err, headers)


def _address(request: HTTPConnection) -> str:
    """The rate limit's key for a caller known by its address only."""
    return f"address:{request.client.host if request.client else 'unknown'}"
