"""The input limits (`protocol.limits`): how depth is measured, which fields of which method are
limited, and the -32602 that names them."""

from __future__ import annotations

from typing import Any

import pytest

from protocol import InvalidParamsError, JSONParseError
from protocol.jsonrpc import METHOD_PARAMS
from protocol.limits import (
    FIELDS,
    MAX_CONTEXT_ID_JSON_BYTES,
    MAX_DEPTH,
    MAX_ID_CHARS,
    MAX_PARTS,
    PARSER_MAX_DEPTH,
    Violation,
    check_params,
    id_problem,
    json_depth,
    read_json,
    too_deep,
    violations,
)
from protocol.v1 import V1_METHOD_PARAMS


def nested(levels: int, leaf: Any = 1) -> Any:
    """`levels` levels deep: objects and arrays by turns, outermost an object."""
    value = leaf
    for level in range(levels):
        value = {"k": value} if (levels - level) % 2 else [value]
    return value


def test_limits_are_the_documented_values() -> None:
    assert (MAX_DEPTH, MAX_ID_CHARS, MAX_PARTS, MAX_CONTEXT_ID_JSON_BYTES, PARSER_MAX_DEPTH) == (
        64,
        1024,
        1000,
        2048,
        1024,
    )


@pytest.mark.parametrize(
    ("value", "depth"),
    [
        ("x", 0),
        (1, 0),
        (None, 0),
        ({}, 1),
        ([], 1),
        ({"a": 1, "b": "two"}, 1),
        ({"a": [1]}, 2),
        ([[], [[]], {}], 3),
        ({"a": {"b": {"c": {}}}, "z": []}, 4),
        (nested(64), 64),
        (nested(65), 65),
        (nested(10_000), 10_000),
    ],
    ids=[
        "string",
        "number",
        "null",
        "empty-object",
        "empty-array",
        "flat-object",
        "array-in-object",
        "arrays",
        "objects",
        "64",
        "65",
        "10000",
    ],
)
def test_json_depth_counts_each_object_or_array_as_one_level(value: Any, depth: int) -> None:
    assert json_depth(value) == depth


def test_json_depth_stops_one_level_past_the_limit() -> None:
    assert json_depth(nested(10_000), stop_after=64) == 65
    assert json_depth(nested(10), stop_after=64) == 10
    assert (too_deep(nested(64)), too_deep(nested(65))) == (False, True)


@pytest.mark.parametrize(
    ("value", "context", "problem"),
    [
        ("a" * 1024, False, None),
        ("a" * 1025, False, "longer than 1024 characters (1025)"),
        (12345, False, None),
        (None, False, None),
        ("a" * 1024, True, None),
        ("€" * 340, True, None),
        (
            "é" * 400,
            True,
            "over 2048 bytes as JSON (2402; a non-ASCII character takes 6 or 12), more than "
            "Temporal indexes",
        ),
        ("é" * 400, False, None),
        ("a" * 100_000, True, "longer than 1024 characters (100000)"),
    ],
    ids=[
        "1024",
        "1025",
        "not-a-string",
        "null",
        "context-1024",
        "context-340-euro",
        "context-400-e-acute",
        "id-400-e-acute",
        "context-100000",
    ],
)
def test_id_problem(value: Any, context: bool, problem: str | None) -> None:
    assert id_problem(value, context=context) == problem


def test_every_method_of_every_version_has_its_limited_fields() -> None:
    methods = set(METHOD_PARAMS) | set(V1_METHOD_PARAMS)
    # Neither extended-card method takes an id or metadata.
    assert set(FIELDS) == methods - {"GetExtendedAgentCard"}


def send_params(**message: Any) -> dict[str, Any]:
    return {
        "message": {
            "role": "user",
            "parts": [{"kind": "text", "text": "hi"}],
            "messageId": "m1",
            **message,
        }
    }


def test_violations_of_a_send_name_every_field_over_its_limit() -> None:
    params = send_params(
        messageId="m" * 1025,
        contextId="c" * 2000,
        taskId="t" * 1025,
        referenceTaskIds=["ok", "r" * 1025],
        metadata=nested(65),
        parts=[
            {"kind": "text", "text": "fine", "metadata": nested(64)},
            {"kind": "data", "data": nested(65), "metadata": nested(100)},
        ],
    )
    params["metadata"] = nested(300)
    params["configuration"] = {"pushNotificationConfig": {"url": "https://x", "id": "p" * 1025}}
    assert violations("message/send", params) == [
        Violation("message.messageId", "longer than 1024 characters (1025)"),
        Violation("message.taskId", "longer than 1024 characters (1025)"),
        Violation("message.contextId", "longer than 1024 characters (2000)"),
        Violation("message.referenceTaskIds.1", "longer than 1024 characters (1025)"),
        Violation("configuration.pushNotificationConfig.id", "longer than 1024 characters (1025)"),
        Violation("metadata", "nested deeper than 64 levels"),
        Violation("message.metadata", "nested deeper than 64 levels"),
        Violation("message.parts.1.metadata", "nested deeper than 64 levels"),
        Violation("message.parts.1.data", "nested deeper than 64 levels"),
    ]


def test_violations_of_a_1_0_send_follow_its_shapes() -> None:
    params = {
        "message": {
            "role": "ROLE_USER",
            "parts": [{"text": "a"}, {"data": nested(65)}],
            "messageId": "m1",
            "contextId": "c" * 1025,
        },
        "configuration": {
            "taskPushNotificationConfig": {"url": "https://x", "id": "p" * 1025, "taskId": "t"}
        },
    }
    assert violations("SendMessage", params) == [
        Violation("message.contextId", "longer than 1024 characters (1025)"),
        Violation(
            "configuration.taskPushNotificationConfig.id", "longer than 1024 characters (1025)"
        ),
        Violation("message.parts.1.data", "nested deeper than 64 levels"),
    ]


def test_more_parts_than_the_limit_are_counted_not_looked_into() -> None:
    parts = [{"kind": "data", "data": nested(65)}] * (MAX_PARTS + 1)
    assert violations("message/stream", send_params(parts=parts)) == [
        Violation("message.parts", "more than 1000 parts (1001)")
    ]
    assert violations("message/stream", send_params(parts=parts[:MAX_PARTS])) == [
        Violation(f"message.parts.{index}.data", "nested deeper than 64 levels")
        for index in range(MAX_PARTS)
    ]


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("tasks/get", {"id": "t" * 1025}, "id"),
        ("tasks/cancel", {"id": "t", "metadata": nested(65)}, "metadata"),
        ("tasks/resubscribe", {"id": "t" * 1025}, "id"),
        (
            "tasks/pushNotificationConfig/set",
            {"taskId": "t", "pushNotificationConfig": {"url": "u", "id": "p" * 1025}},
            "pushNotificationConfig.id",
        ),
        (
            "tasks/pushNotificationConfig/get",
            {"id": "t", "pushNotificationConfigId": "p" * 1025},
            "pushNotificationConfigId",
        ),
        ("tasks/pushNotificationConfig/list", {"id": "t" * 1025}, "id"),
        (
            "tasks/pushNotificationConfig/delete",
            {"id": "t", "pushNotificationConfigId": "p" * 1025},
            "pushNotificationConfigId",
        ),
        ("GetTask", {"id": "t" * 1025}, "id"),
        ("CancelTask", {"id": "t", "metadata": nested(65)}, "metadata"),
        ("SubscribeToTask", {"id": "t" * 1025}, "id"),
        ("ListTasks", {"contextId": "c" * 1025}, "contextId"),
        ("CreateTaskPushNotificationConfig", {"taskId": "t" * 1025, "url": "u"}, "taskId"),
        ("GetTaskPushNotificationConfig", {"taskId": "t", "id": "p" * 1025}, "id"),
        ("DeleteTaskPushNotificationConfig", {"taskId": "t" * 1025, "id": "p"}, "taskId"),
        ("ListTaskPushNotificationConfigs", {"taskId": "t" * 1025}, "taskId"),
    ],
)
def test_each_method_names_its_field_over_the_limit(
    method: str, params: dict[str, Any], field: str
) -> None:
    (found,) = violations(method, params)
    assert found.field == field


def test_fields_of_another_type_or_absent_are_left_to_the_schema() -> None:
    params = {
        "message": {"parts": "not a list", "messageId": 7, "referenceTaskIds": "x" * 2000},
        "metadata": "x",
    }
    assert violations("message/send", params) == []
    assert violations("tasks/get", {}) == []
    assert violations("agent/getAuthenticatedExtendedCard", {"metadata": nested(100)}) == []


def test_check_params_raises_one_invalid_params_naming_the_first_and_counting_the_rest() -> None:
    with pytest.raises(InvalidParamsError) as raised:
        check_params("tasks/cancel", {"id": "t" * 2000, "metadata": nested(65)})
    assert raised.value.to_wire() == {
        "code": -32602,
        "message": "Invalid parameters for tasks/cancel: id: longer than 1024 characters (2000) "
        "(and 1 more)",
        "data": [
            {"field": "id", "message": "longer than 1024 characters (2000)"},
            {"field": "metadata", "message": "nested deeper than 64 levels"},
        ],
    }
    check_params("tasks/cancel", {"id": "t", "metadata": nested(64)})


def test_read_json_names_the_parsers_depth_limit() -> None:
    assert read_json(b"[" * 1024 + b"]" * 1024) is not None
    with pytest.raises(JSONParseError) as raised:
        read_json(b"[" * 1025 + b"]" * 1025)
    assert raised.value.message == (
        "Invalid JSON payload: nested deeper than 1024 levels "
        "(depth limit exceeded: line 1 column 1026 (char 1025))"
    )
    with pytest.raises(JSONParseError) as raised:
        read_json(b"{nope")
    assert raised.value.message == (
        "Invalid JSON payload: unexpected character, expected a string key: line 1 column 2 (char 1)"
    )
