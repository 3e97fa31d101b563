"""Generated JSON-RPC bodies (valid, near-valid, hostile, and near and past every input limit) against
the in-process gateway, which runs tasks on the real Temporal and Redis with the session's echo worker:
every answer is one well-formed JSON-RPC response with the code PROTOCOL.md §10.2 prescribes (or a task,
for a send that starts one), never a 5xx. After the run, no answer was -32603, Temporal and Redis are the
processes they were, the gateway and worker still serve, and every workflow the run started has ended or
waits for input. `A2A_FUZZ_EXAMPLES` sets the number of generated bodies (300 by default)."""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from temporalio.client import Client

from gateway.settings import GatewaySettings
from protocol import METHOD_PARAMS, RequestId
from protocol.limits import (
    MAX_CONTEXT_ID_JSON_BYTES,
    MAX_DEPTH,
    MAX_ID_CHARS,
    MAX_PARTS,
    PARSER_MAX_DEPTH,
)
from tests.a2a_schema import assert_valid_response
from tests.conftest import app_client
from tests.integration.sse import event_frames
from tests.integration.stranded import Servers, listed, queried_state, servers, stranded

EXAMPLES = int(os.environ.get("A2A_FUZZ_EXAMPLES", "300"))
# The generated bodies' gateway: room for ids of 100,000 characters and text parts of hundreds of KB,
# small enough that generated long strings cross it, so the 413 path is fuzzed too.
BODY_LIMIT = 512 * 1024
# The explicit big cases' gateway has the default limit (GatewaySettings.max_body_bytes).
DEFAULT_BODY_LIMIT = GatewaySettings.model_fields["max_body_bytes"].default
# orjson, the gateway's parser, refuses nesting deeper than this (and the body is then -32700).
PARSER_DEPTH = PARSER_MAX_DEPTH
# How long the tasks still working when the run ends get to finish (or to wait for input).
SETTLE_SECONDS = 30 + EXAMPLES // 200
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
INTERNAL_ERROR = -32603
TASK_NOT_FOUND = -32001
# Every message id a body carries ends with this, replaced by a fresh UUID (as many characters and
# bytes) each time the body is posted: a message id is claimed for the task it went to (exactly-once
# sends), so without it a later body would meet an earlier one's claim and no answer could be
# prescribed from its body alone. (The claim stays even when the send was refused: a follow-up to a
# task that does not exist (-32001) leaves its message id claimed for that task id, and a later new
# task sent with that message id is then started under it.)
FRESH = "@@fresh-message-id-placeholder@@"
assert len(FRESH) == len(uuid.uuid4().hex)


@dataclass(frozen=True)
class Raw:
    """JSON text spliced into a body as is: tokens no encoder emits (NaN, 10**5000, bad escapes)."""

    text: bytes


@dataclass(frozen=True)
class Pairs:
    """An object written pair by pair, so that a key may repeat."""

    items: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Deep:
    """A JSON object `depth` levels deep (metadata and a data part's `data` are objects), written
    without recursion: each level below the outermost is an object or an array as `shape` says, in
    turn; `wide` puts a number beside each level's child; `extra` members sit beside the outermost
    level's child."""

    depth: int
    shape: str = "{"
    wide: bool = False
    extra: tuple[tuple[str, Any], ...] = ()

    def levels(self) -> int:
        """How deep the value is, as protocol/limits.py counts (`{}` and `[]` are one level)."""
        return max([self.depth, *(1 + levels(value) for _, value in self.extra)])

    def encode(self) -> bytes:
        head, tail = [], []
        for level in range(self.depth):
            members = b"".join(
                encode(key) + b":" + encode(value) + b"," for key, value in self.extra
            )
            if level == 0 or self.shape[(level - 1) % len(self.shape)] == "{":
                wide = b'"w":1,' if self.wide else b""
                head.append(b"{" + (members if level == 0 else b"") + wide + b'"d":')
                tail.append(b"}")
            else:
                head.append(b"[1," if self.wide else b"[")
                tail.append(b"]")
        return b"".join(head) + b"0" + b"".join(reversed(tail))


def levels(value: Any) -> int:
    """The depth of a small plain JSON value (recursive: for the shallow values built here)."""
    if isinstance(value, dict):
        return 1 + max((levels(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((levels(item) for item in value), default=0)
    return 0


def encode(value: Any) -> bytes:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Deep):
        return value.encode()
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
class NewTask:
    """What the answer to a send that starts a task holds: the task (a stream: first the task, last its
    final status) with the message (`message_id`, FRESH in it) in its history, the `context_id` sent
    (None: the gateway picks one), and `state`: the answer's (a stream's last) state."""

    message_id: str
    context_id: str | None
    state: str


@dataclass(frozen=True)
class Case:
    """A body and the answer PROTOCOL.md prescribes: `code` None for a success, `request_id` echoed;
    for a -32602 over the input limits, `fields`: exactly the fields its `data` names; for a send that
    starts a task, `task`. `limit`: the body limit of the gateway it goes to."""

    body: bytes
    code: int | None
    request_id: RequestId = None
    method: str | None = None
    fields: frozenset[str] | None = None
    task: NewTask | None = None
    limit: int = BODY_LIMIT
    note: str = ""

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 4096 else self.body[:2048] + b"..." + self.body[-512:]
        return (
            f"Case(note={self.note!r}, code={self.code}, request_id={self.request_id!r}, "
            f"method={self.method!r}, fields={self.fields}, task={self.task}, "
            f"limit={self.limit}, body ({len(self.body)} bytes)={body!r})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How Hypothesis shows a case: the repr above, not every byte of a body of megabytes."""
        printer.text(repr(self))


def request(method: Any, params: Any, request_id: Any = 1, **extra: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params, **extra}


def case(body: Any, code: int | None, request_id: RequestId = None, method: Any = None) -> Case:
    data = body if isinstance(body, bytes) else encode(body)
    return Case(data, code, request_id, method if isinstance(method, str) else None)


def sized(prescribed: Case) -> Case:
    """`prescribed`, unless its body is over its gateway's body limit: then 413 with a -32600 (no id),
    before anything else is looked at."""
    if len(prescribed.body) > prescribed.limit:
        return Case(
            prescribed.body,
            INVALID_REQUEST,
            limit=prescribed.limit,
            note=f"{prescribed.note} (over the body limit)",
        )
    return prescribed


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
            "messageId": draw(st.text(max_size=10)) + FRESH,
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
        # Within the parser's depth, in metadata: a valid request while the metadata (one level
        # more) is within MAX_DEPTH, deeper -32602 (protocol.limits).
        depth = draw(
            st.one_of(st.integers(1, MAX_DEPTH - 1), st.integers(MAX_DEPTH, PARSER_DEPTH - 4))
        )
        base["params"]["metadata"] = {
            "deep": Raw(_deep(depth, draw(st.sampled_from([b"[", b"{"])), True))
        }
        code = TASK_NOT_FOUND if depth + 1 <= MAX_DEPTH else INVALID_PARAMS
        return case(base, code, request_id, "tasks/get")
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
    return sized(long)


# Near and past the input limits (protocol/limits.py): an id over MAX_ID_CHARS characters, a contextId
# over MAX_CONTEXT_ID_JSON_BYTES as JSON, metadata or a data part's `data` over MAX_DEPTH levels, over
# MAX_PARTS parts: -32602 whose `data` names exactly the fields over (past the part count, the parts
# themselves are not looked at).

ID_LENGTHS = (1, MAX_ID_CHARS - 1, MAX_ID_CHARS, MAX_ID_CHARS + 1, 100_000)
# ASCII, characters of 2 and 4 bytes in UTF-8, and characters JSON escapes.
ID_CHARS = ("x", "é", "😀", "\u0000", '"', "\\", "\n")
long_ids = st.builds(
    lambda prefix, char, length: (prefix + char * length)[:length],
    st.text(max_size=8),
    st.sampled_from(ID_CHARS),
    st.one_of(st.sampled_from(ID_LENGTHS), st.integers(MAX_ID_CHARS - 4, MAX_ID_CHARS + 4)),
)
DEPTHS = (1, 2, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 200, 1000)
SHAPES = ("{", "[", "{[", "[{", "[[{", "{{[")
# How deep the body is around a value: the envelope and params (2), the message (3), the parts' list
# and the part (5).
PARAMS_LEVELS, MESSAGE_LEVELS, PART_LEVELS = 2, 3, 5
ASK_FOR_INPUT = {"finalState": "input-required"}
# Metadata the echo agent does not read (its options are `metadata.echo`).
plain_metadata = metadata.filter(lambda value: "echo" not in value)


def depths(around: int) -> st.SearchStrategy[int]:
    """Depths of a value `around` levels inside the body: the limit's edges, far past it, and the
    parser's edge (the body PARSER_DEPTH levels deep, and one more)."""
    edge = PARSER_DEPTH - around
    return st.one_of(
        st.sampled_from(DEPTHS),
        st.integers(1, MAX_DEPTH + 1),
        st.sampled_from([edge, edge + 1]),
        st.integers(1, edge + 1),
    )


def deep_values(depth: int) -> st.SearchStrategy[Deep]:
    return st.builds(Deep, st.just(depth), st.sampled_from(SHAPES), st.booleans())


def depth_of(value: Any) -> int:
    return value.levels() if isinstance(value, Deep) else levels(value)


def many_parts(count: int, mixed: bool) -> list[dict[str, Any]]:
    return [
        {"kind": "data", "data": {"i": index}}
        if mixed and index % 2
        else {"kind": "text", "text": f"{index} "}
        for index in range(count)
    ]


def text_part(text: str) -> dict[str, Any]:
    return {"kind": "text", "text": text}


small_parts = st.lists(
    st.one_of(
        st.builds(text_part, st.text(max_size=20)),
        st.builds(lambda data: {"kind": "data", "data": data}, plain_metadata),
    ),
    min_size=1,
    max_size=3,
)
part_counts = st.one_of(
    st.sampled_from([MAX_PARTS - 1, MAX_PARTS, MAX_PARTS + 1]),
    st.integers(MAX_PARTS - 4, MAX_PARTS + 4),
)
part_lists = st.one_of(
    small_parts, small_parts, small_parts, st.builds(many_parts, part_counts, st.booleans())
)


@dataclass
class SendDraft:
    """A message/send or message/stream being drawn (or written out for an explicit example) and
    what makes its answer: a follow-up (`task_id`: a task that does not exist) or a new task that
    ends its turn in `final_state`; `big`: (the body size to reach, the character, the index of the
    text part that grows)."""

    method: str = "message/send"
    task_id: str | None = None
    parts: list[dict[str, Any]] = field(default_factory=lambda: [text_part("hi")])
    message_id: str = FRESH
    # The message's and the params' other members.
    message: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    blocking: bool | None = None
    final_state: str = "completed"
    big: tuple[int, str, int] | None = None
    limit: int = BODY_LIMIT
    notes: list[str] = field(default_factory=list)

    def finish(self, request_id: RequestId) -> Case:
        if self.task_id is None and self.final_state == "input-required":
            self._ask_for_input()
        if self.big is not None:
            self._grow(request_id)
        body = self._body(request_id)
        measured = self._measured()
        note = "; ".join(self.notes)
        if len(body) > self.limit:
            return sized(Case(body, None, limit=self.limit, note=note))
        if max(around + depth for _, depth, around in measured) > PARSER_DEPTH:
            return Case(body, PARSE_ERROR, limit=self.limit, note=note)
        over = self._long_ids() | {
            name for name, depth, _ in measured if name and depth > MAX_DEPTH
        }
        if len(self.parts) > MAX_PARTS:
            over = {name for name in over if not name.startswith("message.parts.")}
            over.add("message.parts")
        prescribed = Case(body, None, request_id, self.method, limit=self.limit, note=note)
        if over:
            return dataclasses.replace(prescribed, code=INVALID_PARAMS, fields=frozenset(over))
        if self.task_id is not None:
            return dataclasses.replace(prescribed, code=TASK_NOT_FOUND)
        sent_context = self.message.get("contextId")
        non_blocking = self.method == "message/send" and self.blocking is False
        state = "submitted" if non_blocking else self.final_state
        return dataclasses.replace(
            prescribed, task=NewTask(self.message_id, sent_context or None, state)
        )

    def _message(self) -> dict[str, Any]:
        message = {"role": "user", "parts": self.parts, "messageId": self.message_id}
        if self.task_id is not None:
            message["taskId"] = self.task_id
        return {**message, **self.message}

    def _body(self, request_id: RequestId) -> bytes:
        params: dict[str, Any] = {"message": self._message(), **self.params}
        if self.method == "message/send" and self.blocking is not None:
            params["configuration"] = {"blocking": self.blocking}
        return encode(request(self.method, params, request_id))

    def _ask_for_input(self) -> None:
        """The echo agent's option to end the turn input-required, in the message's metadata."""
        metadata = self.message.get("metadata")
        if isinstance(metadata, Deep):
            self.message["metadata"] = dataclasses.replace(
                metadata, extra=(("echo", ASK_FOR_INPUT),)
            )
        else:
            self.message["metadata"] = {**(metadata or {}), "echo": ASK_FOR_INPUT}

    def _grow(self, request_id: RequestId) -> None:
        size, char, index = self.big or (0, "x", 0)
        self.parts[index]["text"] = ""
        room = size - len(self._body(request_id))
        self.parts[index]["text"] = char * max(room // len(char.encode()), 0)

    def _measured(self) -> list[tuple[str, int, int]]:
        """Each value the depth limit applies to: (its field, its depth, the body's levels around it);
        the body's own levels count as a field without a name."""
        found = [("", 0, PART_LEVELS)]
        if "metadata" in self.params:
            found.append(("metadata", depth_of(self.params["metadata"]), PARAMS_LEVELS))
        if "metadata" in self.message:
            found.append(("message.metadata", depth_of(self.message["metadata"]), MESSAGE_LEVELS))
        for index, part in enumerate(self.parts):
            for key in ("metadata", "data"):
                if key in part:
                    name = f"message.parts.{index}.{key}"
                    found.append((name, depth_of(part[key]), PART_LEVELS))
        return found

    def _long_ids(self) -> set[str]:
        message = self._message()
        over = set()
        for name in ("messageId", "taskId", "contextId"):
            value = message.get(name)
            if not isinstance(value, str):
                continue
            json_bytes = len(json.dumps(value))  # as Temporal indexes it: \uXXXX escapes
            too_big = name == "contextId" and json_bytes > MAX_CONTEXT_ID_JSON_BYTES
            if len(value) > MAX_ID_CHARS or too_big:
                over.add(f"message.{name}")
        for index, value in enumerate(message.get("referenceTaskIds") or []):
            if len(value) > MAX_ID_CHARS:
                over.add(f"message.referenceTaskIds.{index}")
        return over


def _stress_deep(draw: st.DrawFn, draft: SendDraft) -> None:
    where = draw(st.sampled_from(["metadata", "message.metadata", "part"]))
    around = {"metadata": PARAMS_LEVELS, "message.metadata": MESSAGE_LEVELS}.get(where, PART_LEVELS)
    value = draw(deep_values(draw(depths(around))))
    if where == "metadata":
        draft.params["metadata"] = value
    elif where == "message.metadata":
        draft.message["metadata"] = value
    else:
        index = draw(st.integers(0, len(draft.parts) - 1))
        key = draw(st.sampled_from(["metadata", "data"]))
        if draft.big is not None and draft.big[2] == index:
            key = "metadata"  # the growing part stays a text part
        if key == "data":
            draft.parts[index] = {"kind": "data", "data": value}
        else:
            draft.parts[index]["metadata"] = value
        where = f"message.parts.{index}.{key}"
    draft.notes.append(f"{where}: {value.levels()} levels")


def _stress_id(draw: st.DrawFn, draft: SendDraft) -> None:
    names = ["messageId", "contextId", "referenceTaskIds"]
    name = draw(st.sampled_from([*names, "taskId"] if draft.task_id is not None else names))
    value = draw(long_ids)
    if name == "messageId":
        draft.message_id = value[: max(len(value) - len(FRESH), 0)] + FRESH
    elif name == "taskId":
        draft.task_id = value
    elif name == "contextId":
        draft.message["contextId"] = value
    else:
        others = draw(st.lists(st.text(max_size=10), max_size=2))
        others.insert(draw(st.integers(0, len(others))), value)
        draft.message["referenceTaskIds"] = others
    draft.notes.append(f"{name}: {len(value)} characters")


def _stress_context_bytes(draw: st.DrawFn, draft: SendDraft) -> None:
    """A contextId of non-ASCII (and escaped) characters near its limit in JSON bytes."""
    size = draw(st.one_of(st.sampled_from([2047, 2048, 2049]), st.integers(2030, 2070)))
    unit = draw(
        st.text(
            st.characters(min_codepoint=0x80, codec="utf-8")
            | st.sampled_from(["\u0001", '"', "\\", "a"]),
            min_size=1,
            max_size=3,
        )
    )
    unit_bytes = len(json.dumps(unit)) - 2
    repeat = (size - 2) // unit_bytes
    value = unit * repeat + "c" * (size - 2 - repeat * unit_bytes)
    draft.message["contextId"] = value
    draft.notes.append(f"contextId: {len(json.dumps(value))} bytes as JSON")


def _stress_big(draw: st.DrawFn, draft: SendDraft) -> None:
    """A text part of hundreds of KB, or one that takes the body to just under or over the limit."""
    size = draw(
        st.one_of(
            st.integers(100_000, BODY_LIMIT // 2), st.integers(BODY_LIMIT - 512, BODY_LIMIT + 512)
        )
    )
    index = draw(st.integers(0, len(draft.parts) - 1))
    draft.parts[index] = text_part("")
    draft.big = (size, draw(st.sampled_from(["x", "é", "😀"])), index)
    draft.notes.append(f"a body of {size} bytes")


STRESSES = {  # applied in this order: the big part first, so that no data part takes its place
    "big": _stress_big,
    "deep": _stress_deep,
    "id": _stress_id,
    "context_bytes": _stress_context_bytes,
}


@st.composite
def sends(draw: st.DrawFn) -> Case:
    """message/send and message/stream, to a new task or as a follow-up to a task that does not
    exist, near and past every input limit: a new task within them is a task (the echo agent ends its
    turn completed or input-required), a follow-up -32001."""
    method = draw(st.sampled_from(["message/send", "message/send", "message/stream"]))
    draft = SendDraft(method, parts=draw(part_lists), message_id=draw(st.text(max_size=8)) + FRESH)
    if draw(st.integers(0, 2)) == 0:
        draft.task_id = draw(unknown_task_ids)
    if method == "message/send":
        draft.blocking = draw(st.sampled_from([None, True, False]))
    draft.final_state = draw(st.sampled_from(["completed", "input-required"]))
    if draw(st.booleans()):
        draft.message["contextId"] = draw(st.text(max_size=40))
    if draw(st.booleans()):
        draft.message["metadata"] = draw(plain_metadata)
    if draw(st.booleans()):
        draft.params["metadata"] = draw(metadata)
    stresses = draw(st.lists(st.sampled_from(list(STRESSES)), max_size=2, unique=True))
    for name in sorted(stresses, key=list(STRESSES).index):
        STRESSES[name](draw, draft)
    return draft.finish(draw(valid_ids))


# The limited fields of the methods that name a task: its ids, and whether `metadata` is limited.
TASK_FIELDS: dict[str, tuple[tuple[str, ...], bool]] = {
    "tasks/get": (("id",), True),
    "tasks/cancel": (("id",), True),
    "tasks/resubscribe": (("id",), True),
    "tasks/pushNotificationConfig/list": (("id",), True),
    "tasks/pushNotificationConfig/get": (("id", "pushNotificationConfigId"), True),
    "tasks/pushNotificationConfig/delete": (("id", "pushNotificationConfigId"), True),
    "tasks/pushNotificationConfig/set": (("taskId", "pushNotificationConfig.id"), False),
}


@st.composite
def task_limits(draw: st.DrawFn) -> Case:
    """The methods that name a task (one that does not exist), with a long id or deep metadata: -32602
    naming the fields over a limit, else -32001."""
    method = draw(st.sampled_from(sorted(TASK_FIELDS)))
    request_id = draw(valid_ids)
    params = draw(valid_params(method))
    ids, deep = TASK_FIELDS[method]
    over = set()
    notes = []
    for name in draw(st.lists(st.sampled_from(ids), min_size=1, unique=True)):
        value = draw(long_ids)
        if name == "pushNotificationConfig.id":
            params["pushNotificationConfig"]["id"] = value
        else:
            params[name] = value
        if len(value) > MAX_ID_CHARS:
            over.add(name)
        notes.append(f"{name}: {len(value)} characters")
    depth = 0
    if deep and draw(st.booleans()):
        value = draw(deep_values(draw(depths(PARAMS_LEVELS))))
        params["metadata"] = value
        depth = PARAMS_LEVELS + value.levels()
        if value.levels() > MAX_DEPTH:
            over.add("metadata")
        notes.append(f"metadata: {value.levels()} levels")
    body = encode(request(method, params, request_id))
    prescribed = Case(body, TASK_NOT_FOUND, request_id, method, note="; ".join(notes))
    if len(body) > BODY_LIMIT:
        return sized(prescribed)
    if depth > PARSER_DEPTH:
        return Case(body, PARSE_ERROR, note=prescribed.note)
    if over:
        return dataclasses.replace(prescribed, code=INVALID_PARAMS, fields=frozenset(over))
    return prescribed


# Sends thrice: they carry most of the limits, and start the tasks the check after the run looks at.
bodies = st.one_of(
    valid_requests(),
    invalid_params(),
    near_valid(),
    hostile(),
    sends(),
    sends(),
    sends(),
    task_limits(),
)


def explicit_sends() -> list[Case]:
    """The edges of each limit once, and the big bodies generated cases rarely reach (up to the
    default body limit of 10 MiB, on a gateway of its own)."""
    one_level = MAX_ID_CHARS - len(FRESH)
    drafts = [
        SendDraft(big=(BODY_LIMIT, "x", 0), notes=["a body of exactly the limit"]),
        SendDraft(big=(BODY_LIMIT + 1, "x", 0), notes=["one byte over the limit"]),
        SendDraft(big=(300_000, "é", 0), final_state="input-required", notes=["300 KB"]),
        SendDraft(big=(3 << 20, "x", 0), limit=DEFAULT_BODY_LIMIT, notes=["3 MiB"]),
        SendDraft(
            "message/stream",
            big=(DEFAULT_BODY_LIMIT - 1, "😀", 0),
            limit=DEFAULT_BODY_LIMIT,
            notes=["streamed, just under 10 MiB"],
        ),
        SendDraft(
            big=(DEFAULT_BODY_LIMIT, "x", 0),
            blocking=False,
            limit=DEFAULT_BODY_LIMIT,
            notes=["exactly 10 MiB"],
        ),
        SendDraft(big=(DEFAULT_BODY_LIMIT + 1, "x", 0), limit=DEFAULT_BODY_LIMIT),
        SendDraft(parts=many_parts(MAX_PARTS, True), final_state="input-required"),
        SendDraft(parts=many_parts(MAX_PARTS + 1, False)),
        SendDraft(parts=[{"kind": "data", "data": Deep(MAX_DEPTH, "{[")}]),
        SendDraft(parts=[{"kind": "data", "data": Deep(MAX_DEPTH + 1, "[{")}]),
        SendDraft(parts=[text_part("x")], message={"metadata": Deep(MAX_DEPTH - 1, "[")}),
        SendDraft(params={"metadata": Deep(1000, "{[", wide=True)}),
        SendDraft(parts=[{"kind": "data", "data": Deep(PARSER_DEPTH - PART_LEVELS)}]),
        SendDraft(parts=[{"kind": "data", "data": Deep(PARSER_DEPTH - PART_LEVELS + 1)}]),
        SendDraft(message_id="m" * one_level + FRESH),
        SendDraft(message_id="m" * (one_level + 1) + FRESH),
        SendDraft(message={"contextId": "é" * 341}, final_state="input-required"),
        SendDraft(message={"contextId": "é" * 341 + "c"}),
        SendDraft(message={"contextId": "😀" * 170 + "c" * 4}),
        SendDraft(message={"contextId": "x" * MAX_ID_CHARS}),
        SendDraft(message={"contextId": "x" * 100_000}),
        SendDraft(message={"referenceTaskIds": ["r", "r" * (MAX_ID_CHARS + 1)]}),
        SendDraft(task_id="t" * MAX_ID_CHARS),
        SendDraft(task_id="t" * (MAX_ID_CHARS + 1)),
    ]
    return [draft.finish(f"explicit-{index}") for index, draft in enumerate(drafts)]


EXPLICIT = [
    case(b"\xff", PARSE_ERROR),
    case(request("tasks/get", {"id": "x" * 20_000}, 7), INVALID_PARAMS, 7, "tasks/get"),
    case(request("tasks/get", {"id": "x" * 1024}, 8), TASK_NOT_FOUND, 8, "tasks/get"),
    *explicit_sends(),
]


@dataclass
class FuzzRun:
    """What the run saw (its answers by outcome, HTTP statuses, the tasks its answers named) and who
    served Temporal and Redis before it began."""

    started_at: datetime
    servers: Servers
    outcomes: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    task_ids: set[str] = field(default_factory=set)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(f"FuzzRun(started_at={self.started_at}, outcomes={dict(self.outcomes)})")

    def saw(self, answer: Any) -> None:
        if not isinstance(answer, dict):
            self.outcomes["not a JSON object"] += 1
            return
        error = answer.get("error")
        if isinstance(error, dict):
            self.outcomes[str(error.get("code"))] += 1
            return
        self.outcomes["result"] += 1
        result = answer.get("result")
        if isinstance(result, dict):
            task_id = result.get("id") if result.get("kind") == "task" else result.get("taskId")
            if isinstance(task_id, str):
                self.task_ids.add(task_id)


@dataclass(frozen=True)
class Gateways:
    """The generated bodies' gateway (BODY_LIMIT) and one with the default body limit."""

    fuzz: httpx.AsyncClient
    default: httpx.AsyncClient

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("Gateways(...)")

    def serving(self, limit: int) -> httpx.AsyncClient:
        return self.fuzz if limit == BODY_LIMIT else self.default


@pytest.fixture(scope="module")
async def fuzz_run(temporal_address: str, redis_url: str, redis: Redis) -> FuzzRun:
    return FuzzRun(datetime.now(UTC), await servers(temporal_address, redis_url, redis))


@pytest.fixture(scope="module")
async def gateways(
    gateway_settings: GatewaySettings, echo_worker: None, fuzz_run: FuzzRun
) -> AsyncIterator[Gateways]:
    fuzz_settings = gateway_settings.model_copy(update={"max_body_bytes": BODY_LIMIT})
    async with app_client(fuzz_settings) as fuzz, app_client(gateway_settings) as default:
        yield Gateways(fuzz, default)


def check_response(body: Any, expected: Case, fresh: str) -> None:
    assert isinstance(body, dict), body
    assert body["jsonrpc"] == "2.0", body
    assert ("result" in body) != ("error" in body), body
    assert body["id"] == expected.request_id, body
    assert type(body["id"]) is type(expected.request_id), body
    if expected.code is None:
        assert "result" in body, body
        if expected.task is not None:
            check_new_task(body["result"], expected.task, fresh)
    else:
        error = body.get("error", {})
        assert error.get("code") == expected.code, body
        if expected.fields is not None:
            assert {item["field"] for item in error["data"]} == expected.fields, error
            assert any(f": {name}: " in error["message"] for name in expected.fields), error
    assert_valid_response(body, expected.method)


def check_new_task(task: Any, expected: NewTask, fresh: str) -> None:
    assert task["kind"] == "task", task
    uuid.UUID(task["id"])  # the gateway's own task id
    if expected.context_id is not None:
        assert task["contextId"] == expected.context_id, task["contextId"]
    assert task["status"]["state"] == expected.state, task["status"]
    sent = [message["messageId"] for message in task["history"] if message["role"] == "user"]
    assert sent == [expected.message_id.replace(FRESH, fresh)], sent


def check_new_task_stream(frames: list[Any], expected: Case, fresh: str) -> None:
    """A new task's stream: the task as submitted, then its events to the end of its first turn."""
    assert expected.task is not None
    for frame in frames:
        check_response(frame, dataclasses.replace(expected, task=None), fresh)
    first = frames[0]["result"]
    check_new_task(first, dataclasses.replace(expected.task, state="submitted"), fresh)
    last = frames[-1]["result"]
    assert last["kind"] == "status-update", last
    assert (last["taskId"], last["final"]) == (first["id"], True), last
    assert last["status"]["state"] == expected.task.state, last["status"]
    assert {frame["result"].get("taskId", first["id"]) for frame in frames} == {first["id"]}


async def post(gateways: Gateways, expected: Case, run: FuzzRun) -> None:
    fresh = uuid.uuid4().hex
    body = expected.body.replace(FRESH.encode(), fresh.encode())
    response = await gateways.serving(expected.limit).post(
        "/", content=body, headers={"content-type": "application/json"}
    )
    run.statuses[response.status_code] += 1
    too_large = len(body) > expected.limit
    assert response.status_code == (413 if too_large else 200), response.text[:500]
    content_type = response.headers["content-type"]
    if content_type.startswith("text/event-stream"):
        frames = [frame.data for frame in event_frames(response)]
        for frame in frames:
            run.saw(frame)
        assert expected.method in STREAMING, response.text[:500]
        if expected.task is not None:
            check_new_task_stream(frames, expected, fresh)
            return
        assert expected.code == TASK_NOT_FOUND, response.text[:500]
        # PROTOCOL.md §10 item 5: an unknown task is one error event, then the end.
        assert len(frames) == 1, response.text[:500]
        check_response(frames[0], expected, fresh)
        return
    assert content_type == "application/json", content_type
    answer = response.json()
    run.saw(answer)
    check_response(answer, expected, fresh)


TestFunction = TypeVar("TestFunction", bound=Callable[..., Any])


def explicit_examples(*cases: Case) -> Callable[[TestFunction], TestFunction]:
    def decorate(test: TestFunction) -> TestFunction:
        for explicit in reversed(cases):
            test = example(expected=explicit)(test)
        return test

    return decorate


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
@explicit_examples(*EXPLICIT)
@given(expected=bodies)
async def test_fuzz_every_body_gets_its_prescribed_json_rpc_response(
    gateways: Gateways, fuzz_run: FuzzRun, expected: Case
) -> None:
    for label in labels(expected):
        event(label)  # --hypothesis-show-statistics counts them
    await post(gateways, expected, fuzz_run)


def labels(expected: Case) -> list[str]:
    """What a case is, in a few words: its prescribed outcome, and the limits it comes near."""
    if len(expected.body) > expected.limit:
        outcome = "413"
    elif expected.task is not None:
        outcome = f"a new task ({expected.method}, {expected.task.state})"
    else:
        outcome = str(expected.code)
    near = [
        kind
        for kind, mark in (
            ("deep", " levels"),
            ("long id", " characters"),
            ("contextId bytes", " bytes as JSON"),
            ("big body", "a body of"),
        )
        if mark in expected.note
    ]
    return [outcome, *(f"{kind} -> {outcome}" for kind in near)]


@pytest.mark.timeout(90 + SETTLE_SECONDS)
async def test_fuzz_afterwards_nothing_failed_inside_restarted_or_is_stranded(
    gateways: Gateways,
    fuzz_run: FuzzRun,
    temporal_client: Client,
    task_queue: str,
    temporal_address: str,
    redis_url: str,
    redis: Redis,
) -> None:
    """After the run (which must come first in this module): no answer was -32603 or a 5xx; Temporal
    and Redis are the processes they were; the gateway and the worker (both in this process) still
    serve: a blocking send completes; and every workflow the run started has ended or waits for
    input, once the turns still running had SETTLE_SECONDS to end."""
    if not fuzz_run.outcomes:
        pytest.skip("the fuzz did not run before this check")
    internal = fuzz_run.outcomes[str(INTERNAL_ERROR)]
    server_errors = {status: n for status, n in fuzz_run.statuses.items() if status >= 500}
    assert (internal, server_errors) == (0, {}), fuzz_run.outcomes
    assert await servers(temporal_address, redis_url, redis) == fuzz_run.servers

    fresh = uuid.uuid4().hex
    after = SendDraft(message_id=fresh).finish("after")
    response = await gateways.fuzz.post(
        "/", content=after.body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text[:500]
    check_response(response.json(), after, fresh)
    fuzz_run.task_ids.add(response.json()["result"]["id"])
    assert (await gateways.fuzz.get("/readyz")).status_code == 200

    since = fuzz_run.started_at
    started = await listed(temporal_client, task_queue, since, fuzz_run.task_ids, 20)
    stuck = await stranded(temporal_client, task_queue, since, SETTLE_SECONDS)
    problems = []
    if stuck:
        described = [
            f"{running.workflow_id} ({running.workflow_type}, A2AState {running.state}, "
            f"get_task: {await queried_state(temporal_client, running.workflow_id)})"
            for running in stuck
        ]
        problems.append(
            f"{len(stuck)} of the {len(started)} workflows the run started are still running and "
            f"not waiting for input after {SETTLE_SECONDS} s: {described}"
        )
    # A task no answer named was started for a request that was refused (or never answered).
    unseen = sorted(started - fuzz_run.task_ids)
    if unseen:
        described = [
            f"{task_id} (get_task: {await queried_state(temporal_client, task_id)})"
            for task_id in unseen[:20]
        ]
        problems.append(f"{len(unseen)} workflows started that no answer named: {described}")
    assert not problems, "\n".join(problems)
