"""What one request may carry, checked at the door (the JSON-RPC and HTTP+JSON endpoints, `/ws`) before
anything of it reaches Temporal or Redis: a request over a limit gets -32602 naming the field and the
limit (`check_params`), the same in every A2A version.

Depth (`json_depth`): a JSON object or array is one level, and each object or array inside it one more;
a string, number, boolean or null adds none. `{}`, `[]` and `{"a": 1}` are 1 level deep, `{"a": [1]}`
2, `"x"` 0. Metadata (the params', the message's, each part's) and a data part's `data` are measured
from the value itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from protocol.jsonrpc import InvalidParamsError, JSONParseError

# Metadata and a data part's `data` are at most this many levels deep: far more than any real use, and
# far below the 255 levels at which orjson's and pydantic-core's serializers refuse a value.
MAX_DEPTH = 64
# Every id a request names (message, task, context, referenced task, push notification config): the
# gateway's own task ids are 36-character UUIDs.
MAX_ID_CHARS = 1024
# Temporal indexes a task's context id as a search attribute (A2AContextId), whose value it caps at 2 KiB
# of JSON (`limit.searchAttributesSizeOfValueLimit`): a non-ASCII character takes 6 bytes there
# (\uXXXX), or 12 beyond the Basic Multilingual Plane, so fewer than 1,024 of them fit.
MAX_CONTEXT_ID_JSON_BYTES = 2048
# The parts of one message.
MAX_PARTS = 1000
# orjson's own limit: a document nested deeper is not read at all (-32700).
PARSER_MAX_DEPTH = 1024

TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"


@dataclass(frozen=True, slots=True)
class Violation:
    """One field over its limit: where (dotted, from the params, list items by index: the form of the
    other -32602s' `data`) and what."""

    field: str
    problem: str

    def wire(self) -> dict[str, str]:
        return {"field": self.field, "message": self.problem}


@dataclass(frozen=True, slots=True)
class _Fields:
    """The limited fields of one method's params, as dotted paths (`*`: each item of a list)."""

    ids: tuple[str, ...] = ()
    deep: tuple[str, ...] = ()
    # The path of the message whose parts are counted, if the method carries one.
    message: str | None = None


_MESSAGE_IDS = (
    "message.messageId",
    "message.taskId",
    "message.contextId",
    "message.referenceTaskIds.*",
)
_MESSAGE_DEEP = (
    "metadata",
    "message.metadata",
    "message.parts.*.metadata",
    "message.parts.*.data",
)
_SEND = _Fields(
    ids=(*_MESSAGE_IDS, "configuration.pushNotificationConfig.id"),
    deep=_MESSAGE_DEEP,
    message="message",
)
_SEND_V1 = _Fields(
    ids=(
        *_MESSAGE_IDS,
        "configuration.taskPushNotificationConfig.id",
        "configuration.taskPushNotificationConfig.taskId",
    ),
    deep=_MESSAGE_DEEP,
    message="message",
)
_TASK = _Fields(ids=("id",), deep=("metadata",))
_PUSH_CONFIG = _Fields(ids=("id", "pushNotificationConfigId"), deep=("metadata",))

# Method -> its limited fields: 0.2.5's and 0.3's slash-style methods, 1.0's PascalCase ones.
FIELDS: Mapping[str, _Fields] = {
    "message/send": _SEND,
    "message/stream": _SEND,
    "tasks/get": _TASK,
    "tasks/cancel": _TASK,
    "tasks/resubscribe": _TASK,
    "tasks/pushNotificationConfig/set": _Fields(ids=("taskId", "pushNotificationConfig.id")),
    "tasks/pushNotificationConfig/get": _PUSH_CONFIG,
    "tasks/pushNotificationConfig/list": _TASK,
    "tasks/pushNotificationConfig/delete": _PUSH_CONFIG,
    "SendMessage": _SEND_V1,
    "SendStreamingMessage": _SEND_V1,
    "GetTask": _Fields(ids=("id",)),
    "CancelTask": _TASK,
    "SubscribeToTask": _Fields(ids=("id",)),
    "ListTasks": _Fields(ids=("contextId",)),
    "CreateTaskPushNotificationConfig": _Fields(ids=("taskId", "id")),
    "GetTaskPushNotificationConfig": _Fields(ids=("taskId", "id")),
    "DeleteTaskPushNotificationConfig": _Fields(ids=("taskId", "id")),
    "ListTaskPushNotificationConfigs": _Fields(ids=("taskId",)),
}


def json_depth(value: Any, stop_after: int | None = None) -> int:
    """How many levels deep `value` (parsed JSON) is; with `stop_after`, counting stops one level past
    it (enough to tell that the value is too deep without walking all of it). Level by level, so a
    deep value costs no recursion."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if stop_after is not None and depth > stop_after:
            break
        below: list[Any] = []
        for node in level:
            children = node.values() if isinstance(node, dict) else node
            below.extend(child for child in children if isinstance(child, dict | list))
        level = below
    return depth


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    return json_depth(value, stop_after=limit) > limit


def id_problem(value: Any, *, context: bool = False) -> str | None:
    """What is wrong with an id's length, if anything (a value that is not a string is the schema's
    business). `context`: the id is a context id, which Temporal indexes."""
    if not isinstance(value, str):
        return None
    if len(value) > MAX_ID_CHARS:
        return f"longer than {MAX_ID_CHARS} characters ({len(value)})"
    if context:
        size = len(json.dumps(value))
        if size > MAX_CONTEXT_ID_JSON_BYTES:
            return (
                f"over {MAX_CONTEXT_ID_JSON_BYTES} bytes as JSON ({size}; a non-ASCII character "
                "takes 6 or 12), more than Temporal indexes"
            )
    return None


def violations(method: str, params: Mapping[str, Any]) -> list[Violation]:
    """Every limited field of `method`'s `params` (as the client sent them) that is over its limit."""
    fields = FIELDS.get(method)
    if fields is None:
        return []
    found = _too_many_parts(fields, params)
    # Past the count, the parts themselves are not looked at.
    skip_parts = bool(found)
    for path in fields.ids:
        for field, value in _resolve(params, path):
            problem = id_problem(value, context=field.endswith("contextId"))
            if problem is not None:
                found.append(Violation(field, problem))
    for path in fields.deep:
        if skip_parts and ".parts." in path:
            continue
        for field, value in _resolve(params, path):
            if too_deep(value):
                found.append(Violation(field, TOO_DEEP))
    return found


def _too_many_parts(fields: _Fields, params: Mapping[str, Any]) -> list[Violation]:
    if fields.message is None:
        return []
    message = params.get(fields.message)
    parts = message.get("parts") if isinstance(message, dict) else None
    if isinstance(parts, list) and len(parts) > MAX_PARTS:
        return [Violation(f"{fields.message}.parts", f"more than {MAX_PARTS} parts ({len(parts)})")]
    return []


def check_params(method: str, params: Mapping[str, Any]) -> None:
    """-32602 naming every field of `params` over its limit (the message names the first)."""
    found = violations(method, params)
    if found:
        raise limit_error(f"Invalid parameters for {method}", found)


def limit_error(prefix: str, found: list[Violation]) -> InvalidParamsError:
    first = found[0]
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return InvalidParamsError(
        f"{prefix}: {first.field}: {first.problem}{more}",
        data=[violation.wire() for violation in found],
    )


def read_json(data: bytes | str) -> Any:
    """`data` parsed (-32700 when it is not JSON, or nested deeper than the parser reads)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as err:
        if "depth limit" in str(err) or "ecursion limit" in str(err):
            raise JSONParseError(
                f"Invalid JSON payload: nested deeper than {PARSER_MAX_DEPTH} levels ({err})"
            ) from err
        raise JSONParseError(f"Invalid JSON payload: {err}") from err


def _resolve(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """The values at a dotted `path` below `value` with their own paths (`*`: each list item); a
    step that finds nothing, or not the container it expects, yields nothing."""
    if "." not in path and path != "*":
        # One step, the common case (every method's `id`, `metadata`).
        if isinstance(value, dict) and path in value:
            yield path, value[path]
        return
    steps = path.split(".")
    nodes: list[tuple[str, Any]] = [("", value)]
    for step in steps:
        below: list[tuple[str, Any]] = []
        for where, node in nodes:
            prefix = f"{where}." if where else ""
            if step == "*":
                if isinstance(node, list):
                    below.extend((f"{prefix}{index}", item) for index, item in enumerate(node))
            elif isinstance(node, dict) and step in node:
                below.append((f"{prefix}{step}", node[step]))
        nodes = below
    yield from nodes
