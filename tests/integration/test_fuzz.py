"""Generated JSON-RPC bodies (valid, near-valid, hostile) against the in-process gateway: every answer is
one well-formed JSON-RPC response with the code PROTOCOL.md §10.2 prescribes, never a 5xx, and the
server still answers afterwards. `A2A_FUZZ_EXAMPLES` sets the number of bodies (300 by default)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.settings import GatewaySettings
from protocol import METHOD_PARAMS, RequestId
from tests.a2a_schema import assert_valid_response
from tests.conftest import app_client
from tests.integration.sse import event_frames

EXAMPLES = int(os.environ.get("A2A_FUZZ_EXAMPLES", "300"))
# Small enough that generated long strings cross it, so the 413 path is fuzzed too.
BODY_LIMIT = 64 * 1024
# orjson, the gateway's parser, refuses nesting deeper than this (and the body is then -32700).
PARSER_DEPTH = 1024
UNPARSEABLE = (
    "deep",
    "huge_number",
    "non_finite",
    "bad_utf8",
    "surrogate",
    "blank",
    "truncated",
)
STREAMING = {"message/stream", "tasks/resubscribe"}
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
TASK_NOT_FOUND = -32001


@dataclass(frozen=True)
class Raw:
    """JSON text spliced into a body as is: tokens no encoder emits (NaN, 10**5000, bad escapes)."""

    text: bytes


@dataclass(frozen=True)
class Pairs:
    """An object written pair by pair, so that a key may repeat."""

    items: tuple[tuple[str, Any], ...]


def encode(value: Any) -> bytes:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Pairs):
        members = (encode(key) + b":" + encode(item) for key, item in value.items)
        return b"{" + b",".join(members) + b"}"
    if isinstance(value, dict):
        return encode(Pairs(tuple(value.items())))
    if isinstance(value, list):
        return b"[" + b",".join(encode(item) for item in value) + b"]"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).encode()  # any size, unlike json.dumps under Python's digit limit
    return json.dumps(value, ensure_ascii=False).encode()


@dataclass(frozen=True)
class Case:
    """A body and the answer PROTOCOL.md prescribes: `code` None for a success, `request_id` echoed."""

    body: bytes
    code: int | None
    request_id: RequestId = None
    method: str | None = None


def request(method: Any, params: Any, request_id: Any = 1, **extra: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params, **extra}


def case(body: Any, code: int | None, request_id: RequestId = None, method: Any = None) -> Case:
    data = body if isinstance(body, bytes) else encode(body)
    return Case(data, code, request_id, method if isinstance(method, str) else None)


valid_ids = st.one_of(st.integers(-(2**63), 2**64 - 1), st.text(max_size=20))
# Ids the schema refuses (`string | integer`): floats (1.0 included), bools, null, arrays, objects,
# and integers beyond 64 bits, which the parser reads as floats.
invalid_ids = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.integers(min_value=2**64, max_value=10**300),
    st.integers(min_value=-(10**300), max_value=-(2**63) - 1),
)
json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
json_values = (
    json_leaves
    | st.lists(json_leaves, max_size=3)
    | st.dictionaries(
        st.text(max_size=5), json_leaves | st.lists(json_leaves, max_size=3), max_size=3
    )
)
metadata = st.dictionaries(st.text(max_size=8), json_values, max_size=3)
# Ids no task has: every task id the gateway assigns is a UUID.
unknown_task_ids = st.text(max_size=30).map(lambda text: f"fuzz-{text}")


@st.composite
def valid_params(draw: st.DrawFn, method: str) -> dict[str, Any]:
    """Params that validate for `method` and name a task that does not exist."""
    task_id = draw(unknown_task_ids)
    params: dict[str, Any]
    if method in ("message/send", "message/stream"):
        message = {
            "role": "user",
            "parts": [{"kind": "text", "text": draw(st.text(max_size=20))}],
            "messageId": draw(st.text(min_size=1, max_size=10)),
            "taskId": task_id,
        }
        if draw(st.booleans()):
            message["kind"] = "message"
        params = {"message": message, "configuration": {"blocking": False}}
    elif method == "tasks/pushNotificationConfig/set":
        params = {"taskId": task_id, "pushNotificationConfig": {"url": "https://hooks.invalid/a2a"}}
    elif method == "tasks/pushNotificationConfig/delete":
        params = {"id": task_id, "pushNotificationConfigId": draw(st.text(max_size=10))}
    else:
        params = {"id": task_id}
    if draw(st.booleans()):
        params["metadata"] = draw(metadata)
    if draw(st.booleans()):
        params[draw(st.text(max_size=8).map(lambda key: f"x-{key}"))] = draw(json_values)
    return params


methods = st.sampled_from(sorted(METHOD_PARAMS))


@st.composite
def valid_requests(draw: st.DrawFn) -> Case:
    """Every A2A method with params that validate: -32001, the task being unknown."""
    method = draw(methods)
    request_id = draw(valid_ids)
    return case(
        request(method, draw(valid_params(method)), request_id), TASK_NOT_FOUND, request_id, method
    )


def _required(method: str) -> list[str]:
    return [
        name for name, field in METHOD_PARAMS[method].model_fields.items() if field.is_required()
    ]


wrong_types = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.just("k"), st.integers(), max_size=1),
)


@st.composite
def invalid_params(draw: st.DrawFn) -> Case:
    """Valid envelope, params that do not validate (PROTOCOL.md §10.2): -32602 with the id."""
    method = draw(methods)
    request_id = draw(valid_ids)
    params: Any = draw(valid_params(method))
    choice = draw(st.integers(0, 3))
    if choice == 0:
        params = draw(
            st.one_of(st.none(), st.booleans(), st.integers(), st.text(), st.lists(st.integers()))
        )
    elif choice == 1:
        del params[draw(st.sampled_from(_required(method)))]
    elif choice == 2:
        # pydantic's lax mode turns none of these into a str or a model
        params[draw(st.sampled_from(_required(method)))] = draw(
            wrong_types.filter(lambda v: not isinstance(v, dict))
        )
    elif "message" in params:
        message = params["message"]
        key, bad = draw(
            st.sampled_from(
                [
                    ("parts", "invalid"),
                    ("parts", []),
                    ("parts", [{"kind": "text"}]),
                    ("role", "robot"),
                    ("messageId", ""),
                    ("kind", "task"),
                ]
            )
        )
        message[key] = bad
    else:
        params = {"taskId": 12345}
    return case(request(method, params, request_id), INVALID_PARAMS, request_id, method)


unknown_methods = st.one_of(
    st.text(max_size=30).filter(lambda name: name not in METHOD_PARAMS),
    methods.map(lambda name: name.upper()),
    methods.map(lambda name: name + "/"),
    st.just("message/ssend"),
)


@st.composite
def near_valid(draw: st.DrawFn) -> Case:
    """Envelopes that break one rule of PROTOCOL.md §3, checked in the order of §10.2: the id's type,
    then `jsonrpc`, the method's type, the method table, the id's presence, the params."""
    method = draw(methods)
    request_id: RequestId = draw(valid_ids)
    params = draw(valid_params(method))
    body = request(method, params, request_id)
    kind = draw(
        st.sampled_from(
            ["bad_id", "version", "no_method", "method_type", "unknown", "no_id", "non_object"]
        )
    )
    if kind == "bad_id":
        body["id"] = draw(invalid_ids)
        return case(body, INVALID_REQUEST, None, method)
    if kind == "version":
        version = draw(
            st.one_of(st.just(None), st.just("1.0"), st.just(2.0), st.just(2), st.text(max_size=4))
        )
        if version is None:
            del body["jsonrpc"]
        elif version == "2.0":
            version = "2.0 "
        if version is not None:
            body["jsonrpc"] = version
        return case(body, INVALID_REQUEST, request_id, method)
    if kind == "no_method":
        del body["method"]
        return case(body, INVALID_REQUEST, request_id)
    if kind == "method_type":
        body["method"] = draw(wrong_types)
        return case(body, INVALID_REQUEST, request_id)
    if kind == "unknown":
        body["method"] = draw(unknown_methods)
        if draw(st.booleans()):
            del body["id"]
            request_id = None
        return case(body, METHOD_NOT_FOUND, request_id)
    if kind == "no_id":
        del body["id"]
        return case(body, INVALID_REQUEST, None, method)
    # A2A has no batches: an array, like any JSON that is not an object, is one invalid request.
    batch = st.lists(st.builds(request, methods, st.just({}), valid_ids), max_size=3)
    other = draw(st.one_of(batch, st.text(max_size=10), st.integers(), st.booleans(), st.none()))
    return case(other, INVALID_REQUEST)


def _deep(depth: int, opener: bytes, closed: bool) -> bytes:
    inner = b'{"a":' * depth if opener == b"{" else b"[" * depth
    if not closed:
        return inner
    return inner + (b"1" + b"}" * depth if opener == b"{" else b"]" * depth)


@st.composite
def hostile(draw: st.DrawFn) -> Case:
    """Bodies a parser must survive: deep nesting, huge numbers, NaN, bad UTF-8, lone surrogates,
    duplicate keys, empty or truncated bodies, long strings (across the body limit)."""
    request_id = draw(valid_ids)
    base = request("tasks/get", {"id": draw(unknown_task_ids)}, request_id)
    text = encode(base)
    kind = draw(
        st.sampled_from(
            [
                *UNPARSEABLE,
                "deep_params",
                "duplicate_id",
                "duplicate_method",
                "long",
            ]
        )
    )
    if kind in UNPARSEABLE:
        return _unparseable(draw, kind, base, text)
    return _odd_but_parseable(draw, kind, base, request_id)


def _unparseable(draw: st.DrawFn, kind: str, base: dict[str, Any], text: bytes) -> Case:
    if kind == "deep":
        depth = draw(st.integers(PARSER_DEPTH + 1, 10_000))
        return case(
            _deep(depth, draw(st.sampled_from([b"[", b"{"])), draw(st.booleans())), PARSE_ERROR
        )
    if kind == "huge_number":
        # Past the range of a double the parser refuses the whole body.
        # 10**309 to 10**10000 and their negatives, written out (past Python's int-to-str limit)
        digits = draw(st.integers(309, 10_000))
        huge = Raw(draw(st.sampled_from([b"", b"-"])) + b"1" + b"0" * digits)
        place = draw(st.sampled_from(["id", "params", "metadata"]))
        if place == "id":
            base["id"] = huge
        elif place == "params":
            base["params"]["id"] = huge
        else:
            base["params"]["metadata"] = {"n": huge}
        return case(base, PARSE_ERROR)
    if kind == "non_finite":
        token = Raw(draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999"])))
        if draw(st.booleans()):
            base["id"] = token
        else:
            base["params"]["metadata"] = {"x": token}
        return case(base, PARSE_ERROR)
    if kind == "bad_utf8":
        junk = draw(
            st.sampled_from(
                [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80abc"]
            )
        )
        base["params"]["id"] = Raw(b'"fuzz-' + junk + b'"')
        return case(base, PARSE_ERROR)
    if kind == "surrogate":
        escape = draw(st.sampled_from([b"\\ud800", b"\\udfff", b"\\ud83d", b"\\ude00x"]))
        base["params"]["id"] = Raw(b'"fuzz-' + escape + b'"')
        return case(base, PARSE_ERROR)
    if kind == "blank":
        return case(draw(st.sampled_from([b"", b" ", b"\n\t\r ", b"\xef\xbb\xbf"])), PARSE_ERROR)
    if kind == "truncated":
        # A proper prefix of a compact JSON object is never JSON.
        return case(text[: draw(st.integers(0, len(text) - 1))], PARSE_ERROR)
    raise AssertionError(kind)


def _odd_but_parseable(
    draw: st.DrawFn, kind: str, base: dict[str, Any], request_id: RequestId
) -> Case:
    if kind == "deep_params":
        # Within the parser's depth, in a field the gateway keeps as is: a valid request.
        depth = draw(st.integers(1, PARSER_DEPTH - 4))
        base["params"]["metadata"] = {
            "deep": Raw(_deep(depth, draw(st.sampled_from([b"[", b"{"])), True))
        }
        return case(base, TASK_NOT_FOUND, request_id, "tasks/get")
    if kind == "duplicate_id":
        # The parser keeps the last of repeated keys: the answer echoes the last id.
        last = draw(valid_ids)
        items = (("id", draw(st.one_of(valid_ids, invalid_ids))), *base.items(), ("id", last))
        return case(Pairs(items), TASK_NOT_FOUND, last, "tasks/get")
    if kind == "duplicate_method":
        items = (*base.items(), ("method", "tasks/nope"))
        return case(Pairs(items), METHOD_NOT_FOUND, request_id)
    # Long strings up to the body limit and past it: in metadata the request stands (-32001); as a
    # task id, longer than any task id can be, it is -32602.
    size = draw(st.integers(BODY_LIMIT - 2048, BODY_LIMIT + 2048))
    long_text = draw(st.sampled_from(["x", "é", "\u0000", "😀"])) * (size // 4)
    if draw(st.booleans()):
        base["params"]["metadata"] = {"text": long_text}
        long = case(base, TASK_NOT_FOUND, request_id, "tasks/get")
    else:
        base["params"]["id"] = "fuzz-" + long_text
        long = case(base, INVALID_PARAMS, request_id, "tasks/get")
    if len(long.body) > BODY_LIMIT:
        return Case(long.body, INVALID_REQUEST)
    return long


bodies = st.one_of(valid_requests(), invalid_params(), near_valid(), hostile())


@pytest.fixture(scope="module")
async def fuzz_http(
    gateway_settings: GatewaySettings, echo_worker: None
) -> AsyncIterator[httpx.AsyncClient]:
    settings_ = gateway_settings.model_copy(update={"max_body_bytes": BODY_LIMIT})
    async with app_client(settings_) as client:
        yield client


def check_response(body: Any, expected: Case) -> None:
    assert isinstance(body, dict), body
    assert body["jsonrpc"] == "2.0", body
    assert ("result" in body) != ("error" in body), body
    assert body["id"] == expected.request_id, body
    assert type(body["id"]) is type(expected.request_id), body
    if expected.code is None:
        assert "result" in body, body
    else:
        assert body.get("error", {}).get("code") == expected.code, body
    assert_valid_response(body, expected.method)


async def post(http: httpx.AsyncClient, expected: Case) -> None:
    response = await http.post(
        "/", content=expected.body, headers={"content-type": "application/json"}
    )
    too_large = len(expected.body) > BODY_LIMIT
    assert response.status_code == (413 if too_large else 200), response.text[:500]
    content_type = response.headers["content-type"]
    if content_type.startswith("text/event-stream"):
        assert expected.method in STREAMING, response.text[:500]
        assert expected.code == TASK_NOT_FOUND, response.text[:500]
        frames = event_frames(response)
        # PROTOCOL.md §10 item 5: an unknown task is one error event, then the end.
        assert len(frames) == 1, response.text[:500]
        check_response(frames[0].data, expected)
        return
    assert content_type == "application/json", content_type
    check_response(response.json(), expected)


@pytest.mark.timeout(120 + EXAMPLES // 10)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
@example(case(b"\xff", PARSE_ERROR))
@example(case(request("tasks/get", {"id": "x" * 20_000}, 7), INVALID_PARAMS, 7, "tasks/get"))
@example(case(request("tasks/get", {"id": "x" * 1024}, 8), TASK_NOT_FOUND, 8, "tasks/get"))
@given(expected=bodies)
async def test_fuzz_every_body_gets_its_prescribed_json_rpc_response(
    fuzz_http: httpx.AsyncClient, expected: Case
) -> None:
    await post(fuzz_http, expected)


async def test_fuzz_afterwards_a_valid_message_send_returns_a_task(
    fuzz_http: httpx.AsyncClient,
) -> None:
    params = {
        "message": {
            "role": "user",
            "parts": [{"kind": "text", "text": "hi"}],
            "messageId": uuid.uuid4().hex,
        },
        "configuration": {"blocking": False},
    }
    response = await fuzz_http.post("/", json=request("message/send", params, "after"))
    assert response.status_code == 200
    body = response.json()
    assert_valid_response(body, "message/send")
    assert body["id"] == "after"
    assert body["result"]["kind"] == "task"
