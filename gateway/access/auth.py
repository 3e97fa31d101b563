"""Who is calling: API keys and Bearer JWTs checked against the `[auth]` section of the agents file.

A principal's id is the tenancy key: a task belongs to the principal that created it. API keys are held
only as SHA-256 digests. JWTs are HS256 with a shared secret, or RS256/ES256 with keys from a JWKS URL;
the algorithm is fixed by the configuration (or by the JWKS key), never chosen by the token.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from jwt.types import Options

from config.agents import AgentsConfigError, AuthConfig, JWTConfig
from protocol import A2AError, APIKeySecurityScheme, HTTPAuthSecurityScheme, UnauthenticatedError
from protocol.types import SecurityScheme

logger = logging.getLogger(__name__)

# A browser's EventSource cannot set headers, so streams may carry credentials in the query string.
API_KEY_PARAM = "api_key"
# RFC 6750 §2.3.
ACCESS_TOKEN_PARAM = "access_token"

REALM = "a2a"
# A token naming a `kid` the JWKS cache lacks triggers a refetch at most this often (seconds), so junk
# tokens cannot make the gateway hammer the JWKS server.
JWKS_REFETCH_INTERVAL = 10.0

_SECRET_ALGORITHMS = ["HS256"]
_JWKS_ALGORITHMS = frozenset({"RS256", "ES256"})
# RFC 7518 §3.2: an HS256 key is at least as long as the hash output.
_MIN_SECRET_BYTES = 32
_DECODE_OPTIONS: Options = {
    "require": ["exp", "aud", "iss"],
    "enforce_minimum_key_length": True,
}


class AuthUnavailableError(A2AError):
    """Tokens cannot be checked right now (the JWKS is unreachable): the gateway's fault, HTTP 503."""

    code = -32603
    default_message = "Cannot verify tokens: the JWKS is unavailable"
    http_status = 503


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. `id`: "key:<name>", "jwt:<claim value>" or "anonymous"."""

    id: str
    # The agents it may use; None: all of them.
    agents: frozenset[str] | None

    def may_use(self, agent: str) -> bool:
        return self.agents is None or agent in self.agents


ANONYMOUS = Principal("anonymous", None)


class Authenticator:
    """Turns a request's credentials into a `Principal`, or raises `UnauthenticatedError`.

    `config` None switches auth off: everyone is `ANONYMOUS`. Variables named by the config are read
    once, here; a missing one raises `AgentsConfigError`. `http` (default: a client of its own) fetches
    the JWKS, each fetch within `timeout` seconds; `clock` is the monotonic clock of the JWKS cache.
    """

    def __init__(
        self,
        config: AuthConfig | None,
        *,
        environ: Mapping[str, str] = os.environ,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._keys = _api_keys(config, environ) if config is not None else {}
        self._jwt = config.jwt if config is not None else None
        self._secret = b""
        self._jwks: _JWKS | None = None
        if self._jwt is not None and self._jwt.jwks_url is not None:
            self._jwks = _JWKS(
                self._jwt.jwks_url,
                http,
                timeout=timeout,
                cache_seconds=self._jwt.jwks_cache_seconds,
                clock=clock,
            )
        elif self._jwt is not None:
            self._secret = _jwt_secret(self._jwt, environ)

    @property
    def enabled(self) -> bool:
        return self._config is not None

    @property
    def api_key_header(self) -> str:
        return self._config.api_key_header if self._config is not None else "X-API-Key"

    async def authenticate(
        self, headers: Mapping[str, str], query: Mapping[str, str] | None = None
    ) -> Principal:
        """The caller, from the first credential found: the API key header, `Authorization: Bearer`,
        then (only when `query` is given: browser streams) the `api_key` and `access_token` parameters.
        """
        if self._config is None:
            return ANONYMOUS
        if self._keys and (key := _header(headers, self._config.api_key_header)):
            return self._by_key(key)
        if self._jwt is not None and (token := _bearer(_header(headers, "authorization"))):
            return await self._by_token(self._jwt, token)
        if query is not None:
            if self._keys and (key := query.get(API_KEY_PARAM, "")):
                return self._by_key(key)
            if self._jwt is not None and (token := query.get(ACCESS_TOKEN_PARAM, "")):
                return await self._by_token(self._jwt, token)
        raise UnauthenticatedError(self._missing_message(self._config))

    def www_authenticate(self) -> str:
        """The `WWW-Authenticate` value of a 401: one challenge per configured scheme ("" when off)."""
        challenges = []
        if self._jwt is not None:
            challenges.append(f'Bearer realm="{REALM}"')
        if self._config is not None and self._keys:
            challenges.append(f'ApiKey realm="{REALM}", header="{self._config.api_key_header}"')
        return ", ".join(challenges)

    def security(self) -> tuple[dict[str, SecurityScheme], list[dict[str, list[str]]]] | None:
        """The agent card's `securitySchemes` and `security` (alternatives: any one scheme will do)."""
        if self._config is None:
            return None
        schemes: dict[str, SecurityScheme] = {}
        if self._keys:
            schemes["apiKey"] = APIKeySecurityScheme(in_="header", name=self._config.api_key_header)
        if self._jwt is not None:
            schemes["bearer"] = HTTPAuthSecurityScheme(scheme="bearer", bearerFormat="JWT")
        return schemes, [{name: []} for name in schemes]

    async def aclose(self) -> None:
        if self._jwks is not None:
            await self._jwks.aclose()

    def _missing_message(self, config: AuthConfig) -> str:
        ways = []
        if self._keys:
            ways.append(f"an API key in the {config.api_key_header} header")
        if self._jwt is not None:
            ways.append("a Bearer token")
        return "Authentication required: send " + " or ".join(ways)

    def _by_key(self, key: str) -> Principal:
        principal = self._keys.get(_sha256(key))
        if principal is None:
            raise UnauthenticatedError("Invalid API key")
        return principal

    async def _by_token(self, config: JWTConfig, token: str) -> Principal:
        try:
            key, algorithms = await self._verification_key(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=config.audience,
                issuer=config.issuer,
                leeway=config.leeway_seconds,
                options=_DECODE_OPTIONS,
            )
        except jwt.PyJWTError as err:
            raise UnauthenticatedError(f"Invalid token: {err}") from err
        return Principal(
            "jwt:" + _principal_claim(claims, config.principal_claim),
            _agents_claim(claims, config.agents_claim),
        )

    async def _verification_key(self, token: str) -> tuple[jwt.PyJWK | bytes, list[str]]:
        if self._jwks is None:
            return self._secret, _SECRET_ALGORITHMS
        kid = jwt.get_unverified_header(token).get("kid")
        key = await self._jwks.key(kid)
        if key is None:
            reason = "no 'kid' header" if kid is None else f"no key {kid!r} in the JWKS"
            raise UnauthenticatedError(f"Invalid token: {reason}")
        # A JWKS key carries its one algorithm; PyJWT refuses a token whose `alg` differs.
        return key, [key.algorithm_name]


class _JWKS:
    """The signing keys at a JWKS URL, fetched when stale or when a token names an unknown `kid`.

    Concurrent callers share one fetch in flight, and fetches begin at most every
    `JWKS_REFETCH_INTERVAL` seconds: within that interval of a failed fetch, callers fail at once.
    """

    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient | None,
        *,
        timeout: float,
        cache_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self._url = url
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)
        self._timeout = timeout
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._keys: list[jwt.PyJWK] = []
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._failed = False
        self._fetch: asyncio.Task[None] | None = None

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key named `kid` (without a `kid`: the only key, if there is just one), or None."""
        if self._fetched_at is None or self._clock() - self._fetched_at >= self._cache_seconds:
            await self._refresh()
        key = self._find(kid)
        if key is None:
            await self._refresh()
            key = self._find(kid)
        return key

    async def aclose(self) -> None:
        if self._fetch is not None:
            self._fetch.cancel()
        if self._owns_http:
            await self._http.aclose()

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            return self._keys[0] if len(self._keys) == 1 else None
        return next((key for key in self._keys if key.key_id == kid), None)

    async def _refresh(self) -> None:
        if self._fetch is None:
            now = self._clock()
            if self._attempted_at is not None and now - self._attempted_at < JWKS_REFETCH_INTERVAL:
                if self._failed:
                    raise self._unavailable()
                return
            self._attempted_at = now
            self._fetch = asyncio.create_task(self._load())
            self._fetch.add_done_callback(self._fetched)
        # Shielded: a caller that gives up does not cancel the fetch the others wait for.
        await asyncio.shield(self._fetch)

    def _fetched(self, task: asyncio.Task[None]) -> None:
        self._fetch = None
        if not task.cancelled():
            # Retrieved here too, so a fetch nobody waits for any more does not log "never retrieved".
            task.exception()

    async def _load(self) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._http.get(self._url)
            response.raise_for_status()
            keys = _signing_keys(response.json())
        except (httpx.HTTPError, TimeoutError, ValueError, jwt.PyJWTError) as err:
            self._failed = True
            logger.warning("Cannot fetch the JWKS at %s: %r", self._url, err)
            raise self._unavailable() from err
        self._keys = keys
        self._fetched_at = self._clock()
        self._failed = False

    def _unavailable(self) -> AuthUnavailableError:
        return AuthUnavailableError(f"Cannot verify tokens: the JWKS at {self._url} is unavailable")


def _signing_keys(jwks: Any) -> list[jwt.PyJWK]:
    """The RS256 and ES256 signature keys of a JWK Set; symmetric and other keys are never used."""
    if not isinstance(jwks, dict):
        raise jwt.PyJWKSetError("Invalid JWK Set value")
    keys = [
        key
        for key in jwt.PyJWKSet.from_dict(jwks).keys
        if key.algorithm_name in _JWKS_ALGORITHMS and key.public_key_use in (None, "sig")
    ]
    if not keys:
        raise jwt.PyJWKSetError("The JWK Set holds no RS256 or ES256 signature keys")
    return keys


def _api_keys(config: AuthConfig, environ: Mapping[str, str]) -> dict[str, Principal]:
    """Principals by the lowercase hex SHA-256 of their key."""
    principals: dict[str, Principal] = {}
    for name, key in config.api_keys.items():
        if key.key_sha256 is not None:
            digest = key.key_sha256.lower()
        else:
            digest = _sha256(_variable(environ, key.key_env, f"auth.api_keys.{name}.key_env"))
        if digest in principals:
            other = principals[digest].id.removeprefix("key:")
            raise AgentsConfigError(
                f"auth.api_keys.{name}: the same key as auth.api_keys.{other}; "
                "a key must name one principal"
            )
        agents = frozenset(key.agents) if key.agents is not None else None
        principals[digest] = Principal(f"key:{name}", agents)
    return principals


def _jwt_secret(config: JWTConfig, environ: Mapping[str, str]) -> bytes:
    secret = _variable(environ, config.secret_env, "auth.jwt.secret_env").encode()
    if len(secret) < _MIN_SECRET_BYTES:
        raise AgentsConfigError(
            f"auth.jwt.secret_env: the secret in {config.secret_env} is {len(secret)} bytes long; "
            f"HS256 needs at least {_MIN_SECRET_BYTES}"
        )
    return secret


def _variable(environ: Mapping[str, str], name: str | None, where: str) -> str:
    value = environ.get(name, "") if name is not None else ""
    if not value:
        state = "is empty" if name in environ else "is not set"
        raise AgentsConfigError(f"{where}: variable {name} {state}")
    return value


def _sha256(text: str) -> str:
    # surrogatepass: os.environ smuggles undecodable bytes in as surrogates.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str:
    """A header's value, its name matched case-insensitively (Starlette's headers do; a dict does not)."""
    wanted = name.lower()
    return next((value.strip() for key, value in headers.items() if key.lower() == wanted), "")


def _bearer(authorization: str) -> str:
    """The token of `Authorization: Bearer <token>` (RFC 6750 §2.1; the scheme is case-insensitive)."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _principal_claim(claims: Mapping[str, Any], claim: str) -> str:
    value = claims.get(claim)
    if value is None or value == "":
        raise UnauthenticatedError(f"Invalid token: no '{claim}' claim")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise UnauthenticatedError(f"Invalid token: the '{claim}' claim is not a string")
    return str(value)


def _agents_claim(claims: Mapping[str, Any], claim: str | None) -> frozenset[str] | None:
    if claim is None:
        return None
    value = claims.get(claim)
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list) and all(isinstance(agent, str) for agent in value):
        return frozenset(value)
    raise UnauthenticatedError(
        f"Invalid token: the '{claim}' claim is neither a list of agent names "
        "nor a space-separated string"
    )
