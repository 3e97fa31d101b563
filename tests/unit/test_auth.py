"""API keys and Bearer JWTs: principals, exact rejections, the JWKS cache against a real HTTP server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.utils import base64url_encode
from starlette.datastructures import Headers

from config.agents import AgentsConfigError, AuthConfig
from gateway.access.auth import ANONYMOUS, Authenticator, AuthUnavailableError, Principal
from protocol import APIKeySecurityScheme, HTTPAuthSecurityScheme, UnauthenticatedError

HOST = "127.0.0.1"
ALICE_KEY = "alice-key-0123456789"
BOB_KEY = "bob-key-9876543210"
SECRET = "a-shared-secret-of-at-least-32-bytes"
ENVIRON = {"ALICE_KEY": ALICE_KEY, "A2A_JWT_SECRET": SECRET}
AUDIENCE = "a2a-gateway"
ISSUER = "https://issuer.example"
MISSING_ANY = "Authentication required: send an API key in the X-API-Key header or a Bearer token"
MISSING_KEY = "Authentication required: send an API key in the X-API-Key header"
MISSING_TOKEN = "Authentication required: send a Bearer token"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def keys_config(**fields: Any) -> AuthConfig:
    return AuthConfig.model_validate(
        {
            "api_keys": {
                "alice": {"key_env": "ALICE_KEY", "agents": ["echo"]},
                "bob": {"key_sha256": sha256(BOB_KEY).upper()},
            },
            **fields,
        }
    )


def jwt_config(**fields: Any) -> AuthConfig:
    return AuthConfig.model_validate(
        {"jwt": {"audience": AUDIENCE, "issuer": ISSUER, "secret_env": "A2A_JWT_SECRET", **fields}}
    )


def both_config() -> AuthConfig:
    return AuthConfig.model_validate(
        {
            "api_keys": {"alice": {"key_env": "ALICE_KEY", "agents": ["echo"]}},
            "jwt": {"audience": AUDIENCE, "issuer": ISSUER, "secret_env": "A2A_JWT_SECRET"},
        }
    )


def jwks_config(url: str, **fields: Any) -> AuthConfig:
    return AuthConfig.model_validate(
        {"jwt": {"audience": AUDIENCE, "issuer": ISSUER, "jwks_url": url, **fields}}
    )


def claims(**changes: Any) -> dict[str, Any]:
    """Valid claims for AUDIENCE and ISSUER; a change to None drops the claim."""
    base: dict[str, Any] = {
        "sub": "user-1",
        "aud": AUDIENCE,
        "iss": ISSUER,
        # A day: parametrized tokens are minted when the suite is collected, minutes before they run.
        "exp": int(time.time()) + 86_400,
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def hs256(payload: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def forged_hs256(payload: dict[str, Any], secret: bytes, kid: str) -> str:
    """An HS256 token made by hand: PyJWT refuses to sign with a public key as the HMAC secret."""
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    signing_input = b".".join(
        base64url_encode(json.dumps(part).encode()) for part in (header, payload)
    )
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64url_encode(signature)).decode()


def unsigned(payload: dict[str, Any], kid: str | None = None) -> str:
    """An `alg: none` token."""
    header = {"alg": "none", "typ": "JWT"} | ({"kid": kid} if kid is not None else {})
    return (
        ".".join(base64url_encode(json.dumps(part).encode()).decode() for part in (header, payload))
        + "."
    )


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    def jwk(self) -> dict[str, Any]:
        if isinstance(self.private, rsa.RSAPrivateKey):
            public = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            public = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "use": "sig"}

    def sign(self, payload: dict[str, Any]) -> str:
        return jwt.encode(
            payload, self.private, algorithm=self.algorithm, headers={"kid": self.kid}
        )

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def new_key(kid: str, algorithm: str) -> SigningKey:
    if algorithm == "RS256":
        return SigningKey(kid, algorithm, rsa.generate_private_key(65537, 2048))
    return SigningKey(kid, algorithm, ec.generate_private_key(ec.SECP256R1()))


class JWKSServer:
    """A JWKS endpoint on a real loopback socket that counts the requests it answers."""

    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": []}
        self.status = 200
        self.hits = 0
        self.requested = asyncio.Event()
        # While set to an unset event, responses wait for it.
        self.hold: asyncio.Event | None = None
        self._server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, HOST, 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://{HOST}:{port}/.well-known/jwks.json"

    async def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.hits += 1
            self.requested.set()
            if self.hold is not None:
                await self.hold.wait()
            body = json.dumps(self.jwks).encode()
            writer.write(
                f"HTTP/1.1 {self.status} Status\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def jwks_server() -> AsyncIterator[JWKSServer]:
    server = JWKSServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


Make = Callable[..., Authenticator]


@pytest.fixture
async def make(clock: Clock) -> AsyncIterator[Make]:
    """Authenticators on the test clock and ENVIRON, closed after the test."""
    made: list[Authenticator] = []

    def build(config: AuthConfig | None, **options: Any) -> Authenticator:
        authenticator = Authenticator(config, environ=ENVIRON, clock=clock, **options)
        made.append(authenticator)
        return authenticator

    yield build
    for authenticator in made:
        await authenticator.aclose()


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return new_key("rsa-1", "RS256")


@pytest.fixture(scope="module")
def ec_key() -> SigningKey:
    return new_key("ec-1", "ES256")


async def rejection(
    authenticator: Authenticator,
    headers: dict[str, str],
    query: dict[str, str] | None = None,
) -> str:
    with pytest.raises(UnauthenticatedError) as caught:
        await authenticator.authenticate(headers, query)
    assert (caught.value.code, caught.value.http_status) == (-32010, 401)
    return caught.value.message


async def unavailability(authenticator: Authenticator, token: str) -> str:
    with pytest.raises(AuthUnavailableError) as caught:
        await authenticator.authenticate({"Authorization": f"Bearer {token}"})
    assert (caught.value.code, caught.value.http_status) == (-32603, 503)
    return caught.value.message


# Off


async def test_authenticator_without_config_lets_everyone_in_as_anonymous() -> None:
    authenticator = Authenticator(None, environ={})
    assert authenticator.enabled is False
    assert await authenticator.authenticate({}) is ANONYMOUS
    assert await authenticator.authenticate({"X-API-Key": "junk"}, {"api_key": "junk"}) == (
        Principal("anonymous", None)
    )
    assert authenticator.security() is None
    assert authenticator.www_authenticate() == ""
    assert ANONYMOUS.may_use("anything") is True


# API keys


async def test_authenticate_api_key_from_env_names_principal_and_agents() -> None:
    authenticator = Authenticator(keys_config(), environ=ENVIRON)
    assert authenticator.enabled is True
    principal = await authenticator.authenticate({"X-API-Key": ALICE_KEY})
    assert principal == Principal("key:alice", frozenset({"echo"}))
    assert principal.may_use("echo") is True
    assert principal.may_use("shout") is False


async def test_authenticate_api_key_by_uppercase_sha256_may_use_every_agent() -> None:
    authenticator = Authenticator(keys_config(), environ=ENVIRON)
    principal = await authenticator.authenticate({"X-API-Key": BOB_KEY})
    assert principal == Principal("key:bob", None)
    assert principal.may_use("shout") is True


async def test_authenticate_unknown_api_key_is_rejected() -> None:
    authenticator = Authenticator(keys_config(), environ=ENVIRON)
    assert await rejection(authenticator, {"X-API-Key": "guess"}) == "Invalid API key"
    assert await rejection(authenticator, {"X-API-Key": ALICE_KEY + " x"}) == "Invalid API key"


@pytest.mark.parametrize("name", ["x-api-key", "X-API-KEY", "X-Api-Key"])
async def test_authenticate_api_key_header_name_is_case_insensitive(name: str) -> None:
    authenticator = Authenticator(keys_config(), environ=ENVIRON)
    assert await authenticator.authenticate({name: ALICE_KEY}) == Principal(
        "key:alice", frozenset({"echo"})
    )


async def test_authenticate_reads_a_configured_header_from_starlette_headers() -> None:
    authenticator = Authenticator(keys_config(api_key_header="X-Tenant-Key"), environ=ENVIRON)
    headers = Headers(raw=[(b"x-tenant-key", BOB_KEY.encode())])
    assert await authenticator.authenticate(headers) == Principal("key:bob", None)
    assert await rejection(authenticator, {"X-API-Key": BOB_KEY}) == (
        "Authentication required: send an API key in the X-Tenant-Key header"
    )


async def test_authenticate_query_credentials_count_only_when_query_is_given() -> None:
    authenticator = Authenticator(both_config(), environ=ENVIRON)
    assert await authenticator.authenticate({}, {"api_key": ALICE_KEY}) == Principal(
        "key:alice", frozenset({"echo"})
    )
    assert await authenticator.authenticate({}, {"access_token": hs256(claims())}) == Principal(
        "jwt:user-1", None
    )
    assert await rejection(authenticator, {}, {"api_key": "guess"}) == "Invalid API key"
    assert await rejection(authenticator, {}, {"access_token": "x.y"}) == (
        "Invalid token: Not enough segments"
    )
    assert await rejection(authenticator, {}, {}) == MISSING_ANY
    assert await rejection(authenticator, {}) == MISSING_ANY


async def test_authenticate_headers_come_before_query_and_api_key_before_bearer() -> None:
    authenticator = Authenticator(both_config(), environ=ENVIRON)
    assert await rejection(authenticator, {"X-API-Key": "guess"}, {"api_key": ALICE_KEY}) == (
        "Invalid API key"
    )
    headers = {"X-API-Key": ALICE_KEY, "Authorization": "Bearer garbage"}
    assert await authenticator.authenticate(headers) == Principal("key:alice", frozenset({"echo"}))
    headers = {"Authorization": f"Bearer {hs256(claims(sub='carol'))}"}
    assert await authenticator.authenticate(headers, {"api_key": "guess"}) == Principal(
        "jwt:carol", None
    )


@pytest.mark.parametrize(
    ("config", "headers", "message"),
    [
        (both_config(), {}, MISSING_ANY),
        (keys_config(), {}, MISSING_KEY),
        (jwt_config(), {}, MISSING_TOKEN),
        (keys_config(), {"Authorization": "Basic YWxpY2U6c2VjcmV0"}, MISSING_KEY),
        (keys_config(), {"Authorization": f"Bearer {hs256(claims())}"}, MISSING_KEY),
        (jwt_config(), {"Authorization": "Basic YWxpY2U6c2VjcmV0"}, MISSING_TOKEN),
        (jwt_config(), {"Authorization": "Bearer "}, MISSING_TOKEN),
        (jwt_config(), {"X-API-Key": ALICE_KEY}, MISSING_TOKEN),
        (keys_config(), {"X-API-Key": "  "}, MISSING_KEY),
    ],
)
async def test_authenticate_without_usable_credential_names_the_configured_schemes(
    config: AuthConfig, headers: dict[str, str], message: str
) -> None:
    assert await rejection(Authenticator(config, environ=ENVIRON), headers) == message


# HS256


async def test_authenticate_hs256_token_names_principal_from_sub() -> None:
    authenticator = Authenticator(jwt_config(), environ=ENVIRON)
    for scheme in ("Bearer", "bearer"):
        headers = {"authorization": f"{scheme} {hs256(claims())}"}
        assert await authenticator.authenticate(headers) == Principal("jwt:user-1", None)


async def test_authenticate_hs256_token_expired_within_leeway_is_accepted() -> None:
    authenticator = Authenticator(jwt_config(leeway_seconds=30), environ=ENVIRON)
    token = hs256(claims(exp=int(time.time()) - 10))
    assert await authenticator.authenticate({"Authorization": f"Bearer {token}"}) == Principal(
        "jwt:user-1", None
    )


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (hs256(claims(exp=int(time.time()) - 60)), "Invalid token: Signature has expired"),
        (hs256(claims(aud="someone-else")), "Invalid token: Audience doesn't match"),
        (hs256(claims(iss="https://evil.example")), "Invalid token: Invalid issuer"),
        (
            # Valid from tomorrow: minted at collection, it must still be early when it runs.
            hs256(claims(nbf=int(time.time()) + 86_400)),
            "Invalid token: The token is not yet valid (nbf)",
        ),
        (hs256(claims(exp=None)), 'Invalid token: Token is missing the "exp" claim'),
        (hs256(claims(aud=None)), 'Invalid token: Token is missing the "aud" claim'),
        (hs256(claims(iss=None)), 'Invalid token: Token is missing the "iss" claim'),
        (hs256(claims(sub=None)), "Invalid token: no 'sub' claim"),
        (hs256(claims(sub="")), "Invalid token: no 'sub' claim"),
        (
            hs256(claims(), secret="another-secret-of-at-least-32-bytes"),
            "Invalid token: Signature verification failed",
        ),
        ("garbage", "Invalid token: Not enough segments"),
        ("a.b.c", "Invalid token: Invalid header padding"),
        (
            unsigned(claims()),
            "Invalid token: The specified alg value is not allowed",
        ),
        (
            jwt.encode(claims(), SECRET * 2, algorithm="HS512"),
            "Invalid token: The specified alg value is not allowed",
        ),
    ],
)
async def test_authenticate_bad_hs256_token_is_rejected(token: str, message: str) -> None:
    authenticator = Authenticator(jwt_config(), environ=ENVIRON)
    assert await rejection(authenticator, {"Authorization": f"Bearer {token}"}) == message


@pytest.mark.parametrize(
    ("claim", "value", "principal_id"),
    [("email", "carol@example.com", "jwt:carol@example.com"), ("uid", 42, "jwt:42")],
)
async def test_authenticate_principal_claim_names_the_principal(
    claim: str, value: Any, principal_id: str
) -> None:
    authenticator = Authenticator(jwt_config(principal_claim=claim), environ=ENVIRON)
    token = hs256(claims(**{claim: value}))
    assert await authenticator.authenticate({"Authorization": f"Bearer {token}"}) == Principal(
        principal_id, None
    )


async def test_authenticate_principal_claim_must_be_present_and_scalar() -> None:
    authenticator = Authenticator(jwt_config(principal_claim="email"), environ=ENVIRON)
    missing = hs256(claims())
    assert await rejection(authenticator, {"Authorization": f"Bearer {missing}"}) == (
        "Invalid token: no 'email' claim"
    )
    listed = hs256(claims(email=["a@example.com"]))
    assert await rejection(authenticator, {"Authorization": f"Bearer {listed}"}) == (
        "Invalid token: the 'email' claim is not a string"
    )


@pytest.mark.parametrize(
    ("agents", "expected"),
    [
        (["echo", "shout"], frozenset({"echo", "shout"})),
        ("echo  shout", frozenset({"echo", "shout"})),
        ([], frozenset()),
        (None, frozenset()),
    ],
)
async def test_authenticate_agents_claim_limits_the_principal(
    agents: Any, expected: frozenset[str]
) -> None:
    authenticator = Authenticator(jwt_config(agents_claim="agents"), environ=ENVIRON)
    token = hs256(claims(agents=agents))
    principal = await authenticator.authenticate({"Authorization": f"Bearer {token}"})
    assert principal == Principal("jwt:user-1", expected)
    assert principal.may_use("echo") is ("echo" in expected)


@pytest.mark.parametrize("agents", [3, ["echo", 3], {"echo": True}])
async def test_authenticate_malformed_agents_claim_is_rejected(agents: Any) -> None:
    authenticator = Authenticator(jwt_config(agents_claim="agents"), environ=ENVIRON)
    token = hs256(claims(agents=agents))
    assert await rejection(authenticator, {"Authorization": f"Bearer {token}"}) == (
        "Invalid token: the 'agents' claim is neither a list of agent names "
        "nor a space-separated string"
    )


async def test_authenticate_without_agents_claim_configured_ignores_the_claim() -> None:
    authenticator = Authenticator(jwt_config(), environ=ENVIRON)
    token = hs256(claims(agents=["echo"]))
    assert await authenticator.authenticate({"Authorization": f"Bearer {token}"}) == Principal(
        "jwt:user-1", None
    )


# JWKS


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
async def test_authenticate_jwks_token_is_verified_with_a_cached_key(
    make: Make, jwks_server: JWKSServer, rsa_key: SigningKey, ec_key: SigningKey, algorithm: str
) -> None:
    key = rsa_key if algorithm == "RS256" else ec_key
    jwks_server.jwks = {"keys": [rsa_key.jwk(), ec_key.jwk()]}
    authenticator = make(jwks_config(jwks_server.url, agents_claim="scope"))
    headers = {"Authorization": f"Bearer {key.sign(claims(scope='echo'))}"}
    assert await authenticator.authenticate(headers) == Principal("jwt:user-1", frozenset({"echo"}))
    headers = {"Authorization": f"Bearer {key.sign(claims(sub='user-2'))}"}
    assert await authenticator.authenticate(headers) == Principal("jwt:user-2", frozenset())
    assert jwks_server.hits == 1


async def test_authenticate_jwks_rejects_tokens_that_pick_another_algorithm(
    make: Make, jwks_server: JWKSServer, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    oct_key = {"kty": "oct", "kid": "shared", "k": base64url_encode(SECRET.encode()).decode()}
    jwks_server.jwks = {"keys": [rsa_key.jwk(), ec_key.jwk(), oct_key]}
    authenticator = make(jwks_config(jwks_server.url))
    tokens = {
        forged_hs256(claims(), rsa_key.public_pem(), rsa_key.kid): (
            "Invalid token: The specified alg value is not allowed"
        ),
        jwt.encode(claims(), rsa_key.private, algorithm="RS256", headers={"kid": ec_key.kid}): (
            "Invalid token: The specified alg value is not allowed"
        ),
        unsigned(claims(), rsa_key.kid): ("Invalid token: The specified alg value is not allowed"),
        forged_hs256(claims(), SECRET.encode(), "shared"): (
            "Invalid token: no key 'shared' in the JWKS"
        ),
        jwt.encode(claims(), ec_key.private, algorithm="ES256"): "Invalid token: no 'kid' header",
        hs256(claims()): "Invalid token: no 'kid' header",
        "garbage": "Invalid token: Not enough segments",
    }
    for token, message in tokens.items():
        assert await rejection(authenticator, {"Authorization": f"Bearer {token}"}) == message


async def test_authenticate_jwks_token_without_kid_uses_the_only_key(
    make: Make, jwks_server: JWKSServer, ec_key: SigningKey
) -> None:
    jwks_server.jwks = {"keys": [ec_key.jwk()]}
    authenticator = make(jwks_config(jwks_server.url))
    token = jwt.encode(claims(), ec_key.private, algorithm="ES256")
    assert await authenticator.authenticate({"Authorization": f"Bearer {token}"}) == Principal(
        "jwt:user-1", None
    )


async def test_authenticate_jwks_unknown_kid_refetches_after_key_rotation(
    make: Make, jwks_server: JWKSServer, clock: Clock, rsa_key: SigningKey
) -> None:
    rotated = new_key("rsa-2", "RS256")
    jwks_server.jwks = {"keys": [rsa_key.jwk()]}
    authenticator = make(jwks_config(jwks_server.url))
    old = {"Authorization": f"Bearer {rsa_key.sign(claims(sub='old'))}"}
    new = {"Authorization": f"Bearer {rotated.sign(claims(sub='new'))}"}
    assert await authenticator.authenticate(old) == Principal("jwt:old", None)
    assert jwks_server.hits == 1

    jwks_server.jwks = {"keys": [rotated.jwk()]}
    assert await authenticator.authenticate(old) == Principal("jwt:old", None)
    assert jwks_server.hits == 1
    clock.now += 11
    assert await authenticator.authenticate(new) == Principal("jwt:new", None)
    assert jwks_server.hits == 2
    assert await rejection(authenticator, old) == "Invalid token: no key 'rsa-1' in the JWKS"
    assert jwks_server.hits == 2


async def test_authenticate_jwks_unknown_kids_refetch_at_most_every_ten_seconds(
    make: Make, jwks_server: JWKSServer, clock: Clock, rsa_key: SigningKey
) -> None:
    jwks_server.jwks = {"keys": [rsa_key.jwk()]}
    authenticator = make(jwks_config(jwks_server.url))
    junk = new_key("junk", "RS256")
    headers = {"Authorization": f"Bearer {junk.sign(claims())}"}
    message = "Invalid token: no key 'junk' in the JWKS"

    assert await rejection(authenticator, headers) == message
    assert jwks_server.hits == 1
    clock.now += 20
    assert await rejection(authenticator, headers) == message
    assert jwks_server.hits == 2
    for _ in range(5):
        assert await rejection(authenticator, headers) == message
    clock.now += 9.9
    assert await rejection(authenticator, headers) == message
    assert jwks_server.hits == 2
    clock.now += 0.1
    assert await rejection(authenticator, headers) == message
    assert jwks_server.hits == 3


async def test_authenticate_jwks_is_fetched_again_when_the_cache_expires(
    make: Make, jwks_server: JWKSServer, clock: Clock, ec_key: SigningKey
) -> None:
    jwks_server.jwks = {"keys": [ec_key.jwk()]}
    authenticator = make(jwks_config(jwks_server.url, jwks_cache_seconds=60))
    headers = {"Authorization": f"Bearer {ec_key.sign(claims())}"}
    await authenticator.authenticate(headers)
    clock.now += 59.9
    await authenticator.authenticate(headers)
    assert jwks_server.hits == 1
    clock.now += 0.1
    assert await authenticator.authenticate(headers) == Principal("jwt:user-1", None)
    assert jwks_server.hits == 2


async def test_authenticate_concurrent_callers_share_one_jwks_fetch(
    make: Make, jwks_server: JWKSServer, ec_key: SigningKey
) -> None:
    jwks_server.jwks = {"keys": [ec_key.jwk()]}
    jwks_server.hold = asyncio.Event()
    authenticator = make(jwks_config(jwks_server.url))
    callers = [
        asyncio.create_task(
            authenticator.authenticate(
                {"Authorization": f"Bearer {ec_key.sign(claims(sub=f'u{n}'))}"}
            )
        )
        for n in range(5)
    ]
    async with asyncio.timeout(5):
        await jwks_server.requested.wait()
    assert not any(caller.done() for caller in callers)
    jwks_server.hold.set()
    principals = await asyncio.gather(*callers)
    assert principals == [Principal(f"jwt:u{n}", None) for n in range(5)]
    assert jwks_server.hits == 1


async def test_authenticate_jwks_server_down_is_unavailable(make: Make, ec_key: SigningKey) -> None:
    closed = await asyncio.start_server(lambda reader, writer: None, HOST, 0)
    port = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()
    url = f"http://{HOST}:{port}/jwks.json"
    authenticator = make(jwks_config(url))
    assert await unavailability(authenticator, ec_key.sign(claims())) == (
        f"Cannot verify tokens: the JWKS at {url} is unavailable"
    )


async def test_authenticate_jwks_failure_is_not_retried_for_ten_seconds(
    make: Make, jwks_server: JWKSServer, clock: Clock, ec_key: SigningKey
) -> None:
    jwks_server.status = 500
    jwks_server.jwks = {"keys": [ec_key.jwk()]}
    authenticator = make(jwks_config(jwks_server.url))
    token = ec_key.sign(claims())
    message = f"Cannot verify tokens: the JWKS at {jwks_server.url} is unavailable"
    assert await unavailability(authenticator, token) == message
    assert jwks_server.hits == 1
    jwks_server.status = 200
    clock.now += 9.9
    assert await unavailability(authenticator, token) == message
    assert jwks_server.hits == 1
    clock.now += 0.1
    assert await authenticator.authenticate({"Authorization": f"Bearer {token}"}) == Principal(
        "jwt:user-1", None
    )
    assert jwks_server.hits == 2


async def test_authenticate_jwks_fetch_past_the_deadline_is_unavailable(
    make: Make, jwks_server: JWKSServer, ec_key: SigningKey
) -> None:
    jwks_server.jwks = {"keys": [ec_key.jwk()]}
    jwks_server.hold = asyncio.Event()
    authenticator = make(jwks_config(jwks_server.url), timeout=0.2)
    assert await unavailability(authenticator, ec_key.sign(claims())) == (
        f"Cannot verify tokens: the JWKS at {jwks_server.url} is unavailable"
    )
    assert jwks_server.hits == 1


@pytest.mark.parametrize(
    "jwks",
    [
        {"keys": []},
        {"keys": [{"kty": "oct", "kid": "shared", "k": "c2VjcmV0"}]},
        {"keys": [{"kty": "RSA", "kid": "broken"}]},
        ["not", "a", "set"],
    ],
)
async def test_authenticate_jwks_without_signature_keys_is_unavailable(
    make: Make, jwks_server: JWKSServer, ec_key: SigningKey, jwks: Any
) -> None:
    jwks_server.jwks = jwks
    authenticator = make(jwks_config(jwks_server.url))
    assert await unavailability(authenticator, ec_key.sign(claims())) == (
        f"Cannot verify tokens: the JWKS at {jwks_server.url} is unavailable"
    )


async def test_aclose_leaves_a_given_http_client_open(jwks_server: JWKSServer) -> None:
    async with httpx.AsyncClient() as http:
        authenticator = Authenticator(jwks_config(jwks_server.url), environ={}, http=http)
        await authenticator.aclose()
        assert http.is_closed is False


# Configuration


@pytest.mark.parametrize(
    ("config", "environ", "message"),
    [
        (keys_config(), {}, "auth.api_keys.alice.key_env: variable ALICE_KEY is not set"),
        (
            keys_config(),
            {"ALICE_KEY": ""},
            "auth.api_keys.alice.key_env: variable ALICE_KEY is empty",
        ),
        (jwt_config(), {}, "auth.jwt.secret_env: variable A2A_JWT_SECRET is not set"),
        (
            jwt_config(),
            {"A2A_JWT_SECRET": "short"},
            "auth.jwt.secret_env: the secret in A2A_JWT_SECRET is 5 bytes long; "
            "HS256 needs at least 32",
        ),
        (
            keys_config(),
            {"ALICE_KEY": BOB_KEY},
            "auth.api_keys.bob: the same key as auth.api_keys.alice; a key must name one principal",
        ),
    ],
)
def test_authenticator_with_unusable_config_names_the_key(
    config: AuthConfig, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(AgentsConfigError) as caught:
        Authenticator(config, environ=environ)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("config", "challenge"),
    [
        (both_config(), 'Bearer realm="a2a", ApiKey realm="a2a", header="X-API-Key"'),
        (keys_config(), 'ApiKey realm="a2a", header="X-API-Key"'),
        (keys_config(api_key_header="X-Tenant-Key"), 'ApiKey realm="a2a", header="X-Tenant-Key"'),
        (jwt_config(), 'Bearer realm="a2a"'),
    ],
)
def test_www_authenticate_challenges_the_configured_schemes(
    config: AuthConfig, challenge: str
) -> None:
    assert Authenticator(config, environ=ENVIRON).www_authenticate() == challenge


def test_security_declares_both_schemes_as_alternatives() -> None:
    security = Authenticator(both_config(), environ=ENVIRON).security()
    assert security is not None
    schemes, alternatives = security
    assert schemes == {
        "apiKey": APIKeySecurityScheme(in_="header", name="X-API-Key"),
        "bearer": HTTPAuthSecurityScheme(scheme="bearer", bearerFormat="JWT"),
    }
    assert {name: scheme.to_wire() for name, scheme in schemes.items()} == {
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    }
    assert alternatives == [{"apiKey": []}, {"bearer": []}]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            keys_config(api_key_header="X-Tenant-Key"),
            (
                {"apiKey": APIKeySecurityScheme(in_="header", name="X-Tenant-Key")},
                [{"apiKey": []}],
            ),
        ),
        (
            jwt_config(),
            (
                {"bearer": HTTPAuthSecurityScheme(scheme="bearer", bearerFormat="JWT")},
                [{"bearer": []}],
            ),
        ),
    ],
)
def test_security_declares_only_the_configured_scheme(config: AuthConfig, expected: Any) -> None:
    assert Authenticator(config, environ=ENVIRON).security() == expected
