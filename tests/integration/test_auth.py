"""Authentication, authorization and per-caller limits through the real stack (the app or real gateway
processes, Temporal, the echo workers, Redis), for an agents file with an `[auth]` section: API keys
and HS256 Bearer JWTs on every method, the cards, agents a key may not use (403), tenancy (a task answers
only to its creator), the request rate limit shared by replicas, the per-caller stream cap, oversized
bodies refused unread, and credentials kept out of the access log."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import orjson
import pytest
import websockets
from httpx_sse import EventSource, ServerSentEvent
from redis.asyncio import Redis

from gateway.settings import GatewaySettings
from protocol import context_tasks_key, rate_limit_key
from tests.a2a_schema import assert_valid, assert_valid_response
from tests.conftest import app_client
from tests.integration.conftest import AgentWorker, LaunchGateway
from tests.integration.sse import (
    Frame,
    GatewayProcess,
    echo_message,
    event_frame,
    event_frames,
    rpc_body,
)
from tests.integration.test_tasks import TIMESTAMP
from tests.waiting import eventually

SECRET_ENV = "A2A_TEST_JWT_SECRET"
SECRET = "integration-test-hs256-secret-0123456789"
AUDIENCE = "a2a-test"
ISSUER = "https://issuer.test"
ALICE_KEY = "alice-api-key-7f3a9c"
BOB_KEY = "bob-api-key-51d2e8"
ALICE = {"X-API-Key": ALICE_KEY}
BOB = {"X-API-Key": BOB_KEY}
# An hour: far beyond the 30 s leeway either way.
HOUR = 3600

AUTH_REQUIRED = "Authentication required: send an API key in the X-API-Key header or a Bearer token"
CHALLENGE = 'Bearer realm="a2a", ApiKey realm="a2a", header="X-API-Key"'
SECURITY_SCHEMES = {
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
}
SECURITY: list[dict[str, list[str]]] = [{"apiKey": []}, {"bearer": []}]
ECHO_SKILL = {
    "id": "echo",
    "name": "Echo",
    "description": "Replies with the text of your message as an artifact.",
    "tags": ["echo", "test"],
    "examples": ["hello"],
}
SECRET_SKILL = {
    "id": "secret",
    "name": "Secret",
    "description": "Only for callers who log in.",
    "tags": ["echo"],
}
HOOK = {"url": "https://hooks.example.com/a2a", "id": "hook", "token": "tok-1"}
# What `hooks.example.com` resolves to for the in-process gateway (a public address, so `set` admits it).
PUBLIC_ADDRESS = "93.184.215.14"
STREAM_CAP = (
    "Rate limit exceeded: 2 concurrent streams per caller on this gateway process; close one first"
)


def token(subject: str = "carol", **claims: Any) -> str:
    """An HS256 JWT the gateway accepts, unless `claims` override `aud`, `iss` or `exp`."""
    payload = {
        "sub": subject,
        "aud": AUDIENCE,
        "iss": ISSUER,
        "exp": int(time.time()) + HOUR,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    return jwt.encode(payload, SECRET, algorithm="HS256")


def bearer(subject: str = "carol", **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(subject, **claims)}"}


def refusal(code: int, message: str) -> dict[str, Any]:
    """The body of a request refused before it was read: its id is unknown."""
    return {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}


def not_found(task_id: str, request_id: int | None) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "error": {"code": -32001, "message": f"Task not found: '{task_id}'"},
    }


def card(name: str, url: str, skills: list[dict[str, Any]]) -> dict[str, Any]:
    """An agent card of this module's agents file, with auth on."""
    return {
        "protocolVersion": "0.2.5",
        "name": name,
        "description": "An agent behind an A2A gateway.",
        "url": url,
        "preferredTransport": "JSONRPC",
        "version": "0.1.0",
        "capabilities": {
            "streaming": True,
            "pushNotifications": True,
            "stateTransitionHistory": False,
        },
        "securitySchemes": SECURITY_SCHEMES,
        "security": SECURITY,
        "defaultInputModes": ["text/plain", "application/json"],
        "defaultOutputModes": ["text/plain"],
        "skills": skills,
        "supportsAuthenticatedExtendedCard": True,
    }


async def public_resolver(host: str, port: int) -> list[str]:
    return [PUBLIC_ADDRESS]


@pytest.fixture(scope="module")
def secret_env() -> Iterator[None]:
    """The JWT secret, where the agents file says (the app reads it when it is created)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_ENV, SECRET)
        yield


@pytest.fixture(scope="module")
def agents_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "agents.toml"
    suffix = uuid.uuid4().hex[:8]
    path.write_text(
        f"""
default = "echo"

[agents.echo]
kind = "echo"
task_queue = "test-auth-echo-{suffix}"

[[agents.echo.extended_skills]]
id = "secret"
name = "Secret"
description = "Only for callers who log in."
tags = ["echo"]

[agents.shout]
kind = "echo"
task_queue = "test-auth-shout-{suffix}"
name = "Shout Agent"

[auth]
api_key_header = "X-API-Key"
[auth.api_keys.alice]
key_sha256 = "{hashlib.sha256(ALICE_KEY.encode()).hexdigest()}"
[auth.api_keys.bob]
key_sha256 = "{hashlib.sha256(BOB_KEY.encode()).hexdigest()}"
agents = ["echo"]
[auth.jwt]
secret_env = "{SECRET_ENV}"
audience = "{AUDIENCE}"
issuer = "{ISSUER}"
"""
    )
    return path


@pytest.fixture(scope="module")
async def workers(agent_worker: AgentWorker, agents_file: Path) -> AsyncIterator[None]:
    async with agent_worker(agents_file, "echo"), agent_worker(agents_file, "shout"):
        yield


@pytest.fixture(scope="module")
async def auth_http(
    gateway_settings: GatewaySettings, agents_file: Path, secret_env: None, workers: None
) -> AsyncIterator[httpx.AsyncClient]:
    settings = gateway_settings.model_copy(update={"config": agents_file})
    async with app_client(settings, resolver=public_resolver) as client:
        yield client


@pytest.fixture(scope="module")
def auth_gateway(
    launch_gateway: LaunchGateway, agents_file: Path, workers: None
) -> Iterator[GatewayProcess]:
    env = {
        "A2A_CONFIG": str(agents_file),
        SECRET_ENV: SECRET,
        "A2A_GATEWAY_MAX_STREAMS_PER_PRINCIPAL": "2",
        "A2A_GATEWAY_ACCESS_LOG": "true",
    }
    with launch_gateway("auth", env) as gateway:
        yield gateway


async def post(
    http: httpx.AsyncClient,
    method: str,
    params: Any,
    headers: dict[str, str],
    *,
    request_id: int = 1,
    url: str = "/",
) -> httpx.Response:
    return await http.post(url, json=rpc_body(method, params, request_id), headers=headers)


def answer(response: httpx.Response, method: str) -> dict[str, Any]:
    """The JSON-RPC response of an HTTP 200 application/json answer, checked against the schema."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert_valid_response(body, method)
    return body


def events(response: httpx.Response) -> list[Frame]:
    """The SSE frames of a stream that has ended (the in-process client reads the whole body)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/event-stream"
    return event_frames(response)


async def start(
    http: httpx.AsyncClient, headers: dict[str, str], text: str = "hi", *, url: str = "/"
) -> dict[str, Any]:
    """A task that ends its first turn input-required (and stays open), owned by `headers`' caller."""
    params = {"message": echo_message(text, finalState="input-required")}
    body = answer(await post(http, "message/send", params, headers, url=url), "message/send")
    task: dict[str, Any] = body["result"]
    assert task["status"]["state"] == "input-required", task
    return task


def input_required(task: dict[str, Any], text: str) -> dict[str, Any]:
    """What a task looks like after one echo turn of `text` that ended input-required."""
    task_id, context_id = task["id"], task["contextId"]
    assert TIMESTAMP.match(task["status"]["timestamp"])
    prompt = {
        "role": "agent",
        "parts": [
            {
                "kind": "text",
                "text": f"Echoed {len(text)} characters. Send another message to continue.",
            }
        ],
        "messageId": task["status"]["message"]["messageId"],
        "taskId": task_id,
        "contextId": context_id,
        "kind": "message",
    }
    user = {
        "role": "user",
        "parts": [{"kind": "text", "text": text}],
        "messageId": task["history"][0]["messageId"],
        "taskId": task_id,
        "contextId": context_id,
        "metadata": {"echo": {"finalState": "input-required"}},
        "kind": "message",
    }
    return {
        "id": task_id,
        "contextId": context_id,
        "status": {
            "state": "input-required",
            "message": prompt,
            "timestamp": task["status"]["timestamp"],
        },
        "history": [user, prompt],
        "artifacts": [
            {
                "artifactId": task["artifacts"][0]["artifactId"],
                "parts": [{"kind": "text", "text": text}],
                "name": "echo",
            }
        ],
        "kind": "task",
    }


# --- 1. Every method, every kind of credential ---------------------------------------------------

ENDPOINTS = [
    "message/send",
    "message/stream",
    "tasks/get",
    "tasks/cancel",
    "tasks/resubscribe",
    "tasks/pushNotificationConfig/set",
    "tasks/pushNotificationConfig/get",
    "tasks/pushNotificationConfig/list",
    "tasks/pushNotificationConfig/delete",
    "GET /tasks/{id}/events",
    "GET /agent/authenticatedExtendedCard",
]


def params_for(method: str, task_id: str) -> dict[str, Any]:
    params: dict[str, dict[str, Any]] = {
        "message/send": {"message": echo_message("hi")},
        "message/stream": {"message": echo_message("hi")},
        "tasks/get": {"id": task_id},
        "tasks/cancel": {"id": task_id},
        "tasks/resubscribe": {"id": task_id},
        "tasks/pushNotificationConfig/set": {"taskId": task_id, "pushNotificationConfig": HOOK},
        "tasks/pushNotificationConfig/get": {"id": task_id, "pushNotificationConfigId": "hook"},
        "tasks/pushNotificationConfig/list": {"id": task_id},
        "tasks/pushNotificationConfig/delete": {"id": task_id, "pushNotificationConfigId": "hook"},
    }
    return params[method]


async def request(
    http: httpx.AsyncClient, endpoint: str, task_id: str, headers: dict[str, str]
) -> httpx.Response:
    if endpoint == "GET /tasks/{id}/events":
        return await http.get(f"/tasks/{task_id}/events", headers=headers)
    if endpoint == "GET /agent/authenticatedExtendedCard":
        return await http.get("/agent/authenticatedExtendedCard", headers=headers)
    return await post(http, endpoint, params_for(endpoint, task_id), headers)


# Each credential's headers are made when its test runs.
Credential = Callable[[], dict[str, str]]
REFUSED_CREDENTIALS: dict[str, tuple[Credential, str]] = {
    "none": (lambda: {}, AUTH_REQUIRED),
    "bad-api-key": (lambda: {"X-API-Key": "not-a-key"}, "Invalid API key"),
    "expired-jwt": (
        lambda: bearer(exp=int(time.time()) - HOUR),
        "Invalid token: Signature has expired",
    ),
    "wrong-audience-jwt": (
        lambda: bearer(aud="someone-else"),
        "Invalid token: Audience doesn't match",
    ),
}


@pytest.fixture(scope="module")
async def alice_task(auth_http: httpx.AsyncClient) -> dict[str, Any]:
    return await start(auth_http, ALICE, "mine")


@pytest.mark.parametrize("credential", list(REFUSED_CREDENTIALS))
@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_request_without_a_valid_credential_is_401_with_a_challenge(
    auth_http: httpx.AsyncClient, alice_task: dict[str, Any], endpoint: str, credential: str
) -> None:
    headers, message = REFUSED_CREDENTIALS[credential]
    response = await request(auth_http, endpoint, alice_task["id"], headers())
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE
    assert response.headers["content-type"] == "application/json"
    assert response.json() == refusal(-32010, message)
    assert_valid(response.json(), "JSONRPCErrorResponse")


VALID_CREDENTIALS: dict[str, Credential] = {
    "api-key": lambda: ALICE,
    "jwt": lambda: bearer("carol"),
}


async def check_push_methods(
    http: httpx.AsyncClient, headers: dict[str, str], task_id: str
) -> None:
    config = {"taskId": task_id, "pushNotificationConfig": HOOK}
    calls: list[tuple[str, dict[str, Any], Any]] = [
        ("tasks/pushNotificationConfig/set", config, config),
        (
            "tasks/pushNotificationConfig/get",
            {"id": task_id, "pushNotificationConfigId": "hook"},
            config,
        ),
        ("tasks/pushNotificationConfig/list", {"id": task_id}, [config]),
        (
            "tasks/pushNotificationConfig/delete",
            {"id": task_id, "pushNotificationConfigId": "hook"},
            None,
        ),
        ("tasks/pushNotificationConfig/list", {"id": task_id}, []),
    ]
    for request_id, (method, params, result) in enumerate(calls, start=10):
        response = await post(http, method, params, headers, request_id=request_id)
        assert answer(response, method) == {"jsonrpc": "2.0", "id": request_id, "result": result}


async def check_streams(
    http: httpx.AsyncClient, headers: dict[str, str], task: dict[str, Any]
) -> None:
    """tasks/resubscribe on the input-required task: its snapshot, then the end; message/stream of a new
    task: the task first, its end last; GET /tasks/{id}/events of that task: the same log, browser view."""
    resubscribed = events(
        await post(http, "tasks/resubscribe", {"id": task["id"]}, headers, request_id=7)
    )
    assert [frame.data for frame in resubscribed] == [{"jsonrpc": "2.0", "id": 7, "result": task}]
    message = echo_message("hello")
    streamed = events(
        await post(http, "message/stream", {"message": message}, headers, request_id=8)
    )
    first = streamed[0].data["result"]
    new_id, context_id = first["id"], first["contextId"]
    assert TIMESTAMP.match(first["status"]["timestamp"])
    assert streamed[0].data == {
        "jsonrpc": "2.0",
        "id": 8,
        "result": {
            "id": new_id,
            "contextId": context_id,
            "status": {"state": "submitted", "timestamp": first["status"]["timestamp"]},
            "history": [{**message, "taskId": new_id, "contextId": context_id, "kind": "message"}],
            "kind": "task",
        },
    }
    assert [frame.data["result"]["kind"] for frame in streamed] == [
        "task",
        "status-update",
        "artifact-update",
        "status-update",
    ]
    assert streamed[-1].data["result"]["status"]["state"] == "completed"
    assert streamed[-1].data["result"]["final"] is True
    browser = events(await http.get(f"/tasks/{new_id}/events", headers=headers))
    assert [frame.id for frame in browser] == [frame.id for frame in streamed]
    assert browser[0].data == {"type": "task.created", "task": first}
    assert [frame.data["type"] for frame in browser] == [
        "task.created",
        "task.status",
        "task.progress",
        "task.completed",
    ]


@pytest.mark.parametrize("credential", list(VALID_CREDENTIALS))
async def test_valid_credential_may_use_every_method(
    auth_http: httpx.AsyncClient, credential: str
) -> None:
    headers = VALID_CREDENTIALS[credential]()
    task = await start(auth_http, headers, "hi")
    assert task == input_required(task, "hi")
    got = await post(auth_http, "tasks/get", {"id": task["id"]}, headers, request_id=2)
    assert answer(got, "tasks/get") == {"jsonrpc": "2.0", "id": 2, "result": task}
    await check_push_methods(auth_http, headers, task["id"])
    await check_streams(auth_http, headers, task)

    canceled = answer(
        await post(auth_http, "tasks/cancel", {"id": task["id"]}, headers, request_id=3),
        "tasks/cancel",
    )
    stamp = canceled["result"]["status"]["timestamp"]
    assert TIMESTAMP.match(stamp)
    assert canceled == {
        "jsonrpc": "2.0",
        "id": 3,
        "result": {**task, "status": {"state": "canceled", "timestamp": stamp}},
    }

    extended = await auth_http.get("/agent/authenticatedExtendedCard", headers=headers)
    assert extended.status_code == 200
    assert extended.headers["content-type"] == "application/json"
    public = (await auth_http.get("/.well-known/agent.json")).json()
    assert extended.json() == {**public, "skills": [ECHO_SKILL, SECRET_SKILL]}
    assert extended.json() == card("echo", "http://testserver/", [ECHO_SKILL, SECRET_SKILL])
    assert_valid(extended.json(), "AgentCard")


@pytest.mark.parametrize(
    ("param", "value", "owner"),
    [("api_key", ALICE_KEY, ALICE), ("access_token", token("dave"), bearer("dave"))],
)
async def test_task_events_take_the_credential_from_the_query_string(
    auth_http: httpx.AsyncClient, param: str, value: str, owner: dict[str, str]
) -> None:
    params = {"message": echo_message("hello")}
    task = answer(await post(auth_http, "message/send", params, owner), "message/send")["result"]
    with_header = await auth_http.get(f"/tasks/{task['id']}/events", headers=owner)
    with_query = await auth_http.get(f"/tasks/{task['id']}/events", params={param: value})
    assert events(with_query) == events(with_header)
    assert [frame.data["type"] for frame in events(with_query)][-1] == "task.completed"


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("api_key", "not-a-key", "Invalid API key"),
        (
            "access_token",
            token(exp=int(time.time()) - HOUR),
            "Invalid token: Signature has expired",
        ),
        ("access_token", token(aud="someone-else"), "Invalid token: Audience doesn't match"),
    ],
)
async def test_task_events_with_a_bad_query_credential_is_401(
    auth_http: httpx.AsyncClient, alice_task: dict[str, Any], param: str, value: str, message: str
) -> None:
    response = await auth_http.get(f"/tasks/{alice_task['id']}/events", params={param: value})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE
    assert response.json() == refusal(-32010, message)


@pytest.mark.parametrize(
    "query",
    [{"api_key": ALICE_KEY}, {"access_token": token("carol")}],
    ids=["api_key", "access_token"],
)
@pytest.mark.parametrize(
    "path", ["/", "/agents/echo", "/agent/authenticatedExtendedCard"], ids=["root", "agent", "card"]
)
async def test_only_browser_streams_take_credentials_from_the_query_string(
    auth_http: httpx.AsyncClient, alice_task: dict[str, Any], query: dict[str, str], path: str
) -> None:
    if path.endswith("Card"):
        response = await auth_http.get(path, params=query)
    else:
        body = rpc_body("tasks/get", {"id": alice_task["id"]})
        response = await auth_http.post(path, params=query, json=body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE
    assert response.json() == refusal(-32010, AUTH_REQUIRED)


# --- 2. Cards ------------------------------------------------------------------------------------


async def test_public_cards_need_no_credential_and_declare_the_schemes(
    auth_http: httpx.AsyncClient,
) -> None:
    root = await auth_http.get("/.well-known/agent.json")
    shout = await auth_http.get("/agents/shout/.well-known/agent.json")
    assert (root.status_code, shout.status_code) == (200, 200)
    assert root.json() == card("echo", "http://testserver/", [ECHO_SKILL])
    assert shout.json() == card("Shout Agent", "http://testserver/agents/shout", [ECHO_SKILL])
    for response in (root, shout):
        assert_valid(response.json(), "AgentCard")
    extended = await auth_http.get("/agents/shout/agent/authenticatedExtendedCard", headers=ALICE)
    assert extended.status_code == 200
    assert extended.json() == shout.json()


async def test_gateway_without_auth_declares_no_schemes_and_has_no_extended_card(
    http: httpx.AsyncClient,
) -> None:
    public = await http.get("/.well-known/agent.json")
    assert public.status_code == 200
    assert public.json() == {
        "protocolVersion": "0.2.5",
        "name": "Echo Agent",
        "description": "Replies with the text it receives, as a streamed artifact.",
        "url": "http://testserver/",
        "preferredTransport": "JSONRPC",
        "version": "0.1.0",
        "capabilities": {
            "streaming": True,
            "pushNotifications": True,
            "stateTransitionHistory": False,
        },
        "defaultInputModes": ["text/plain", "application/json"],
        "defaultOutputModes": ["text/plain"],
        "skills": [ECHO_SKILL],
    }
    extended = await http.get("/agent/authenticatedExtendedCard", headers=ALICE)
    assert extended.status_code == 404
    assert extended.json() == refusal(
        -32601,
        "No authenticated extended card: this gateway authenticates no one "
        "(supportsAuthenticatedExtendedCard is false)",
    )


# --- 3. Agents a key may not use -----------------------------------------------------------------

FORBIDDEN_SHOUT = refusal(-32011, "Forbidden: this credential may not use agent 'shout'")


async def test_key_limited_to_some_agents_is_403_on_the_others(
    auth_http: httpx.AsyncClient,
) -> None:
    params = {"message": echo_message("hey you")}
    for response in (
        await post(auth_http, "message/send", params, BOB, url="/agents/shout"),
        await post(auth_http, "tasks/get", {"id": "any"}, BOB, url="/agents/shout"),
        await auth_http.get("/agents/shout/agent/authenticatedExtendedCard", headers=BOB),
    ):
        assert response.status_code == 403
        assert "www-authenticate" not in response.headers
        assert response.json() == FORBIDDEN_SHOUT

    for url in ("/", "/agents/echo"):
        mine = answer(await post(auth_http, "message/send", params, BOB, url=url), "message/send")
        assert mine["result"]["status"]["state"] == "completed"
    for headers in (ALICE, bearer("carol")):
        shouted = await post(auth_http, "message/send", params, headers, url="/agents/shout")
        result = answer(shouted, "message/send")["result"]
        assert result["status"]["state"] == "completed"
        assert result["artifacts"][0]["parts"] == [{"kind": "text", "text": "hey you"}]


# --- 4. Tenancy ----------------------------------------------------------------------------------


async def check_invisible(http: httpx.AsyncClient, intruder: dict[str, str], task_id: str) -> None:
    """Every way `intruder` could reach the task answers as if it did not exist."""
    follow_up = {**echo_message("let me in"), "taskId": task_id}
    push = [method for method in ENDPOINTS if method.startswith("tasks/pushNotificationConfig/")]
    calls = [
        ("tasks/get", {"id": task_id}),
        ("tasks/cancel", {"id": task_id}),
        ("message/send", {"message": follow_up}),
        ("message/stream", {"message": follow_up}),
        ("tasks/pushNotificationConfig/get", {"id": task_id}),
        *((method, params_for(method, task_id)) for method in push),
    ]
    for request_id, (method, params) in enumerate(calls, start=1):
        response = await post(http, method, params, intruder, request_id=request_id)
        assert answer(response, method) == not_found(task_id, request_id), method
    resubscribed = events(
        await post(http, "tasks/resubscribe", {"id": task_id}, intruder, request_id=20)
    )
    assert resubscribed == [Frame(None, not_found(task_id, 20))]
    browser = await http.get(f"/tasks/{task_id}/events", headers=intruder)
    assert browser.status_code == 404
    assert browser.json() == not_found(task_id, None)


@pytest.mark.parametrize(
    ("owner", "intruder"),
    [
        (lambda: ALICE, lambda: BOB),
        # A token whose subject is "alice" is not alice's API key: principals are "key:alice", "jwt:alice".
        (lambda: ALICE, lambda: bearer("alice")),
        (lambda: bearer("carol"), lambda: ALICE),
        (lambda: bearer("carol"), lambda: bearer("erin")),
    ],
    ids=["key-vs-key", "key-vs-jwt-same-name", "jwt-vs-key", "jwt-vs-jwt"],
)
async def test_a_task_answers_only_to_its_creator(
    auth_http: httpx.AsyncClient, owner: Credential, intruder: Credential
) -> None:
    mine = owner()
    task = await start(auth_http, mine, "private")
    await check_invisible(auth_http, intruder(), task["id"])

    # Unchanged: nothing of the intruder's was delivered or stored.
    got = await post(auth_http, "tasks/get", {"id": task["id"]}, mine, request_id=2)
    assert answer(got, "tasks/get") == {"jsonrpc": "2.0", "id": 2, "result": task}
    listed = await post(auth_http, "tasks/pushNotificationConfig/list", {"id": task["id"]}, mine)
    assert answer(listed, "tasks/pushNotificationConfig/list")["result"] == []
    # The owner still can: the next turn is the second, after exactly the first turn's two messages.
    follow_up = {**echo_message("again"), "taskId": task["id"]}
    sent = answer(
        await post(auth_http, "message/send", {"message": follow_up}, mine), "message/send"
    )
    history = sent["result"]["history"]
    assert [(message["role"], message["parts"][0]["text"]) for message in history] == [
        ("user", "private"),
        ("agent", "Echoed 7 characters. Send another message to continue."),
        ("user", "again"),
    ]
    assert sent["result"]["status"]["state"] == "completed"


# --- 5. The request rate, shared by replicas -----------------------------------------------------


async def test_a_context_id_reused_by_another_principal_shares_nothing(
    auth_http: httpx.AsyncClient, redis: Redis
) -> None:
    """Agents read a new task's earlier turns from its context's task list: each owner has its own."""
    context_id = f"shared-{uuid.uuid4().hex[:8]}"
    ids = {}
    for name, headers in (("key:alice", ALICE), ("key:bob", BOB)):
        message = {**echo_message("mine"), "contextId": context_id}
        body = answer(
            await post(auth_http, "message/send", {"message": message}, headers), "message/send"
        )
        assert body["result"]["contextId"] == context_id
        ids[name] = body["result"]["id"]
    for name, task_id in ids.items():
        assert await redis.lrange(context_tasks_key(context_id, name), 0, -1) == [task_id.encode()]
    assert await redis.exists(context_tasks_key(context_id)) == 0


@pytest.fixture(scope="module")
def rate_limited_gateways(
    launch_gateway: LaunchGateway, agents_file: Path
) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    env = {
        "A2A_CONFIG": str(agents_file),
        SECRET_ENV: SECRET,
        "A2A_GATEWAY_RATE_LIMIT_PER_SECOND": "0.5",
        "A2A_GATEWAY_RATE_LIMIT_BURST": "4",
    }
    with launch_gateway("rl-a", env) as a, launch_gateway("rl-b", env) as b:
        yield a, b


async def test_rate_limit_holds_across_gateway_processes(
    rate_limited_gateways: tuple[GatewayProcess, GatewayProcess],
    sse_client: httpx.AsyncClient,
    redis: Redis,
) -> None:
    a, b = rate_limited_gateways
    await redis.delete(rate_limit_key("key:alice"), rate_limit_key("key:bob"))
    unknown = f"no-such-task-{uuid.uuid4().hex[:8]}"

    async def get(
        gateway: GatewayProcess, headers: dict[str, str], request_id: int
    ) -> httpx.Response:
        return await post(
            sse_client,
            "tasks/get",
            {"id": unknown},
            headers,
            request_id=request_id,
            url=gateway.url,
        )

    # A burst of 4, then one request each 2 s: two calls on each replica spend alice's burst.
    for request_id, gateway in enumerate((a, b, a, b), start=1):
        response = await get(gateway, ALICE, request_id)
        assert answer(response, "tasks/get") == not_found(unknown, request_id)
    for gateway in (a, b):
        limited = await get(gateway, ALICE, 5)
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/json"
        retry_after = limited.headers["retry-after"]
        assert retry_after in ("1", "2"), retry_after
        assert limited.json() == refusal(-32012, f"Rate limit exceeded: retry in {retry_after} s")
    # Bob has a budget of his own.
    assert answer(await get(a, BOB, 6), "tasks/get") == not_found(unknown, 6)


async def test_failed_attempts_are_rate_limited_by_address(
    rate_limited_gateways: tuple[GatewayProcess, GatewayProcess],
    sse_client: httpx.AsyncClient,
    redis: Redis,
) -> None:
    a, b = rate_limited_gateways
    await redis.delete(rate_limit_key("address:127.0.0.1"))
    wrong = {"X-API-Key": "guess"}
    for request_id, gateway in enumerate((a, b, a, b), start=1):
        response = await post(
            sse_client, "tasks/get", {"id": "x"}, wrong, request_id=request_id, url=gateway.url
        )
        assert (response.status_code, response.json()) == (401, refusal(-32010, "Invalid API key"))
    limited = await post(sse_client, "tasks/get", {"id": "x"}, wrong, request_id=5, url=a.url)
    retry_after = limited.headers["retry-after"]
    assert (limited.status_code, limited.json()) == (
        429,
        refusal(-32012, f"Rate limit exceeded: retry in {retry_after} s"),
    )


# --- 6. Concurrent streams per caller --------------------------------------------------------------


@dataclass
class OpenStream:
    """A browser stream left open: the response, its first frame, and the reader of the rest (kept, so
    that dropping it does not close the connection)."""

    response: httpx.Response
    first: Frame | None = None
    rest: AsyncIterator[ServerSentEvent] | None = None

    async def aclose(self) -> None:
        await self.response.aclose()


async def open_stream(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> OpenStream:
    response = await client.send(client.build_request("GET", url, headers=headers), stream=True)
    if response.status_code != 200:
        await response.aread()
        await response.aclose()
        return OpenStream(response)
    events = EventSource(response).aiter_sse()
    async with asyncio.timeout(10):
        first = event_frame(await anext(events))
    return OpenStream(response, first, events)


async def test_streams_per_caller_are_capped_per_process(
    auth_gateway: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    base = auth_gateway.url
    task = await start(sse_client, ALICE, "held", url=base)
    bobs = await start(sse_client, BOB, "bobs", url=base)
    url = f"{base}/tasks/{task['id']}/events"
    async with contextlib.AsyncExitStack() as held:
        streams = []
        for _ in range(2):
            stream = await open_stream(sse_client, url, ALICE)
            held.push_async_callback(stream.aclose)
            streams.append(stream)
        for stream in streams:
            assert stream.response.status_code == 200
            assert stream.first is not None
            assert stream.first.data["type"] == "task.created"
            assert stream.first.data["task"]["id"] == task["id"]

        third = await open_stream(sse_client, url, ALICE)
        assert third.response.status_code == 429
        assert third.response.headers["retry-after"] == "1"
        assert third.response.json() == refusal(-32012, STREAM_CAP)
        for request_id, (method, params) in enumerate(
            [
                ("tasks/resubscribe", {"id": task["id"]}),
                ("message/stream", {"message": echo_message("one more")}),
            ],
            start=7,
        ):
            refused = await post(sse_client, method, params, ALICE, request_id=request_id, url=base)
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "1"
            assert refused.json() == {
                "jsonrpc": "2.0",
                "id": request_id,
                "error": {"code": -32012, "message": STREAM_CAP},
            }

        # The cap is each caller's own.
        bob = await open_stream(sse_client, f"{base}/tasks/{bobs['id']}/events", BOB)
        held.push_async_callback(bob.aclose)
        assert bob.response.status_code == 200
        assert bob.first is not None
        assert bob.first.data["task"]["id"] == bobs["id"]

        # Closed by the client, a stream gives its place back once the gateway sees the disconnect.
        await streams[0].aclose()
        again = await eventually(
            lambda: open_stream(sse_client, url, ALICE),
            10,
            what="the closed stream's place to be given back",
            until=lambda stream: stream.response.status_code != 429,
        )
        held.push_async_callback(again.aclose)
        assert again.response.status_code == 200
        assert again.first == streams[1].first
        # Two are open again: the cap still holds.
        assert (await open_stream(sse_client, url, ALICE)).response.status_code == 429


# --- 7. Oversized bodies -------------------------------------------------------------------------


async def raw_post(
    url: str, headers: dict[str, str], declared: int, sent: bytes
) -> tuple[int, dict[str, str], Any]:
    """POST declaring `declared` body bytes but sending only `sent`; the response (status, headers,
    JSON body) as it arrives, the connection still open on our side."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(
            f"POST / HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared}\r\n{head}\r\n".encode()
            + sent
        )
        await writer.drain()
        async with asyncio.timeout(3):
            status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
            received = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines if line)
            }
            body = await reader.readexactly(int(received["content-length"]))
    finally:
        writer.close()
    return int(status_line.split()[1]), received, orjson.loads(body)


async def test_oversized_body_is_413_before_the_rest_is_sent(auth_gateway: GatewayProcess) -> None:
    status, headers, body = await raw_post(auth_gateway.url, ALICE, 104_857_600, b'{"jsonrpc"')
    assert (status, headers["content-type"], headers["connection"]) == (
        413,
        "application/json",
        "close",
    )
    assert body == refusal(-32600, "Request payload validation error: body exceeds 10485760 bytes")
    # Nor does the gateway read a stranger's body: the credential is checked first.
    status, headers, body = await raw_post(auth_gateway.url, {}, 104_857_600, b'{"jsonrpc"')
    assert (status, headers["www-authenticate"]) == (401, CHALLENGE)
    assert body == refusal(-32010, AUTH_REQUIRED)


# --- 8. Credentials in the access log ------------------------------------------------------------


def access_lines(gateway: GatewayProcess, task_id: str) -> list[str]:
    """The access log's request lines for the task's events, without timestamp and client port."""
    pattern = re.compile(
        r'^\S+ \S+ INFO uvicorn\.access 127\.0\.0\.1:\d+ - (".*/tasks/' + task_id + r"/events.*)$"
    )
    return [m.group(1) for line in gateway.output().splitlines() if (m := pattern.match(line))]


async def test_query_credentials_are_redacted_in_the_access_log(
    auth_gateway: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    base = auth_gateway.url
    jwt_owner = token("frank")
    expired = token("frank", exp=int(time.time()) - HOUR)
    task = await start(sse_client, {"Authorization": f"Bearer {jwt_owner}"}, "log", url=base)
    other = await start(sse_client, ALICE, "log", url=base)
    events_url = f"{base}/tasks/{task['id']}/events"
    # The tasks are input-required, so their streams stay open: take the first frame and hang up.
    for url in (
        f"{events_url}?access_token={jwt_owner}",
        f"{base}/tasks/{other['id']}/events?lastEventId=0&api_key={ALICE_KEY}",
    ):
        opened = await open_stream(sse_client, url, {})
        await opened.aclose()
        assert opened.response.status_code == 200
        assert opened.first is not None
        assert opened.first.data["type"] == "task.created"
    refused = await sse_client.get(f"{events_url}?access_token={expired}")
    assert refused.status_code == 401
    refused = await sse_client.get(f"{events_url}?api_key=wrong-{ALICE_KEY}")
    assert refused.status_code == 401

    # uvicorn logs a request line before it writes the response head: the lines are in the file.
    assert access_lines(auth_gateway, task["id"]) == [
        f'"GET /tasks/{task["id"]}/events?access_token=[redacted] HTTP/1.1" 200',
        f'"GET /tasks/{task["id"]}/events?access_token=[redacted] HTTP/1.1" 401',
        f'"GET /tasks/{task["id"]}/events?api_key=[redacted] HTTP/1.1" 401',
    ]
    assert access_lines(auth_gateway, other["id"]) == [
        f'"GET /tasks/{other["id"]}/events?lastEventId=0&api_key=[redacted] HTTP/1.1" 200'
    ]
    log = auth_gateway.output()
    for secret in (jwt_owner, expired, ALICE_KEY):
        assert secret not in log


@pytest.mark.parametrize(
    ("name", "credential"),
    [("access%5Ftoken", token("grace")), ("api%5Fkey", BOB_KEY)],
    ids=["access_token", "api_key"],
)
async def test_percent_encoded_query_credential_is_redacted_in_the_access_log(
    auth_gateway: GatewayProcess, sse_client: httpx.AsyncClient, name: str, credential: str
) -> None:
    # The gateway decodes parameter names, so `access%5Ftoken` is `access_token` to it.
    unknown = f"no-such-task-{uuid.uuid4().hex[:8]}"
    response = await sse_client.get(
        f"{auth_gateway.url}/tasks/{unknown}/events?{name}={credential}"
    )
    assert response.status_code == 404
    assert response.json() == not_found(unknown, None)
    [line] = access_lines(auth_gateway, unknown)
    assert line.startswith(f'"GET /tasks/{unknown}/events?')
    assert line.endswith(' HTTP/1.1" 404')
    assert credential not in auth_gateway.output()


async def test_websocket_query_credentials_are_redacted_in_the_log(
    auth_gateway: GatewayProcess,
) -> None:
    ws_url = auth_gateway.url.replace("http://", "ws://") + "/ws"
    async with websockets.connect(f"{ws_url}?api_key={ALICE_KEY}") as socket:
        await socket.send(orjson.dumps({"type": "ping", "data": 1}).decode())
        assert orjson.loads(await socket.recv()) == {"type": "pong", "data": 1}
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(f"{ws_url}?access_token=not-{ALICE_KEY}"):
            pass
    assert refused.value.response.status_code == 401
    log = auth_gateway.output()
    lines = [line for line in log.splitlines() if '"WebSocket /ws?' in line]
    assert [line.split(" - ", 1)[1] for line in lines[-2:]] == [
        '"WebSocket /ws?api_key=[redacted]" [accepted]',
        '"WebSocket /ws?access_token=[redacted]" 401',
    ]
    assert ALICE_KEY not in log
    assert "without completing handshake" not in log


# --- A2A 1.0 under auth -----------------------------------------------------------------------------


async def v1_post(
    http: httpx.AsyncClient, method: str, params: Any, headers: dict[str, str]
) -> dict[str, Any]:
    response = await http.post(
        "/",
        json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
        headers={**headers, "A2A-Version": "1.0"},
    )
    body: dict[str, Any] = response.json()
    return body


async def test_list_tasks_shows_each_principal_only_its_own(auth_http: httpx.AsyncClient) -> None:
    context_id = f"list-{uuid.uuid4().hex[:8]}"
    ids = {}
    for name, headers in (("alice", ALICE), ("bob", BOB)):
        message = {
            "role": "ROLE_USER",
            "parts": [{"text": name}],
            "messageId": str(uuid.uuid4()),
            "contextId": context_id,
        }
        sent = await v1_post(auth_http, "SendMessage", {"message": message}, headers)
        ids[name] = sent["result"]["task"]["id"]
    for name, headers in (("alice", ALICE), ("bob", BOB)):
        listed = await v1_post(auth_http, "ListTasks", {"contextId": context_id}, headers)
        assert [task["id"] for task in listed["result"]["tasks"]] == [ids[name]]
        assert listed["result"]["totalSize"] == 1
        rest = await auth_http.get("/rest/tasks", params={"contextId": context_id}, headers=headers)
        assert [task["id"] for task in rest.json()["tasks"]] == [ids[name]]
    other = await v1_post(auth_http, "GetTask", {"id": ids["alice"]}, BOB)
    assert other["error"]["code"] == -32001


async def test_http_json_refuses_a_caller_without_credentials_with_its_challenge(
    auth_http: httpx.AsyncClient,
) -> None:
    response = await auth_http.get("/rest/tasks")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE
    assert response.json() == {
        "error": {"code": 401, "status": "UNAUTHENTICATED", "message": AUTH_REQUIRED, "details": []}
    }


async def test_extended_card_in_every_version(auth_http: httpx.AsyncClient) -> None:
    v1 = await v1_post(auth_http, "GetExtendedAgentCard", {}, ALICE)
    assert v1["result"]["capabilities"]["extendedAgentCard"] is True
    assert [skill["id"] for skill in v1["result"]["skills"]] == ["echo", "secret"]
    rest = await auth_http.get("/rest/extendedAgentCard", headers=ALICE)
    assert rest.json() == v1["result"]
    v03 = await post(auth_http, "agent/getAuthenticatedExtendedCard", {}, ALICE)
    assert v03.json()["result"]["protocolVersion"] == "0.3.0"
    assert [skill["id"] for skill in v03.json()["result"]["skills"]] == ["echo", "secret"]
