"""Every row of PROTOCOL.md §10.2, answered by the dispatcher with handlers replaced by stubs."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from gateway.rpc.dispatch import Call, Dispatcher
from protocol import (
    MessageSendParams,
    Task,
    TaskNotFoundError,
    TaskQueryParams,
    TaskState,
    TaskStatus,
)
from tests.a2a_schema import assert_valid_response


async def stub_send(params: MessageSendParams, call: Call) -> dict[str, Any]:
    message = params.message.model_copy(update={"taskId": "t1", "contextId": "c1"})
    task = Task(
        id="t1", contextId="c1", status=TaskStatus(state=TaskState.SUBMITTED), history=[message]
    )
    return task.to_wire()


async def stub_get(params: TaskQueryParams, call: Call) -> dict[str, Any]:
    raise TaskNotFoundError(f"Task not found: '{params.id}'")


async def stub_crash(params: Any, call: Call) -> dict[str, Any]:
    raise RuntimeError("secret detail that must not leak")


dispatcher = Dispatcher(
    {"message/send": stub_send, "tasks/get": stub_get, "tasks/cancel": stub_crash}
)

USER_MESSAGE = {"role": "user", "parts": [{"kind": "text", "text": "hi"}], "messageId": "m1"}


async def answer(body: bytes | Any) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    response = await dispatcher.dispatch(raw)
    method = body.get("method") if isinstance(body, dict) else None
    assert_valid_response(response, method)
    return response


def error(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": err}


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"jsonrpc": "2.0", "id": 1,',
        b"",
        b'{"jsonrpc":"2.0","id":1,"method":"\xff\xfe"}',
    ],
    ids=["garbage", "truncated", "empty", "invalid-utf8"],
)
async def test_dispatch_malformed_json_parse_error(body: bytes) -> None:
    response = await answer(body)
    assert response["id"] is None
    assert response["error"]["code"] == -32700
    assert response["error"]["message"].startswith("Invalid JSON payload: ")


@pytest.mark.parametrize("body", [[], ["x"], "x", 1, None, True], ids=repr)
async def test_dispatch_body_not_object_invalid_request(body: Any) -> None:
    assert await answer(body) == error(
        None,
        -32600,
        "Request payload validation error: the body must be a JSON-RPC request object",
    )


async def test_dispatch_missing_jsonrpc_invalid_request() -> None:
    body = {"method": "message/send", "params": {}, "id": 3}
    assert await answer(body) == error(
        3, -32600, "Request payload validation error: 'jsonrpc' must be \"2.0\""
    )


async def test_dispatch_missing_jsonrpc_and_id_invalid_request_null_id() -> None:
    body = {"method": "message/send", "params": {}}
    assert await answer(body) == error(
        None, -32600, "Request payload validation error: 'jsonrpc' must be \"2.0\""
    )


async def test_dispatch_missing_method_invalid_request_echoes_id() -> None:
    assert await answer({"jsonrpc": "2.0", "params": {}, "id": "abc"}) == error(
        "abc", -32600, "Request payload validation error: 'method' must be a string"
    )


async def test_dispatch_wrong_jsonrpc_version_invalid_request_echoes_id() -> None:
    body = {"jsonrpc": "1.0", "method": "tasks/get", "params": {"id": "t"}, "id": 7}
    assert await answer(body) == error(
        7, -32600, "Request payload validation error: 'jsonrpc' must be \"2.0\""
    )


@pytest.mark.parametrize("bad_id", [{"bad": "type"}, [1], 1.5, True, None], ids=repr)
async def test_dispatch_bad_id_type_invalid_request_null_id(bad_id: Any) -> None:
    # The id is checked before the params, which are invalid here too.
    body = {"jsonrpc": "2.0", "method": "message/send", "params": "nope", "id": bad_id}
    assert await answer(body) == error(
        None, -32600, "Request payload validation error: 'id' must be a string or an integer"
    )


async def test_dispatch_unknown_method_without_id_method_not_found() -> None:
    body = {"jsonrpc": "2.0", "method": "message/ssend", "params": {}}
    assert await answer(body) == error(None, -32601, "Method not found: 'message/ssend'")


async def test_dispatch_unknown_method_method_not_found_echoes_id() -> None:
    body = {"jsonrpc": "2.0", "method": "nonexistent/method", "params": {}, "id": 9}
    assert await answer(body) == error(9, -32601, "Method not found: 'nonexistent/method'")


async def test_dispatch_known_method_without_id_invalid_request() -> None:
    body = {"jsonrpc": "2.0", "method": "tasks/get", "params": {"id": "t"}}
    assert await answer(body) == error(
        None, -32600, "Request payload validation error: 'tasks/get' needs an 'id'"
    )


@pytest.mark.parametrize("params", ["not_a_dict", [], 5], ids=repr)
async def test_dispatch_params_not_object_invalid_params(params: Any) -> None:
    body = {"jsonrpc": "2.0", "method": "message/send", "params": params, "id": 1}
    assert await answer(body) == error(1, -32602, "Invalid parameters: 'params' must be an object")


@pytest.mark.parametrize(
    ("message", "data"),
    [
        (
            {**USER_MESSAGE, "parts": "invalid"},
            [{"field": "message.parts", "message": "Input should be a valid list"}],
        ),
        (
            {"kind": "message"},
            [
                {"field": "message.role", "message": "Field required"},
                {"field": "message.parts", "message": "Field required"},
                {"field": "message.messageId", "message": "Field required"},
            ],
        ),
        (
            {k: v for k, v in USER_MESSAGE.items() if k != "messageId"},
            [{"field": "message.messageId", "message": "Field required"}],
        ),
        (
            {k: v for k, v in USER_MESSAGE.items() if k != "role"},
            [{"field": "message.role", "message": "Field required"}],
        ),
        (
            {k: v for k, v in USER_MESSAGE.items() if k != "parts"},
            [{"field": "message.parts", "message": "Field required"}],
        ),
        (
            {**USER_MESSAGE, "parts": []},
            [
                {
                    "field": "message.parts",
                    "message": "List should have at least 1 item after validation, not 0",
                }
            ],
        ),
        (
            {**USER_MESSAGE, "role": "robot"},
            [{"field": "message.role", "message": "Input should be 'user' or 'agent'"}],
        ),
        (
            {**USER_MESSAGE, "parts": [{"kind": "video", "url": "x"}]},
            [
                {
                    "field": "message.parts.0",
                    "message": "Input tag 'video' found using 'kind' does not match any of the "
                    "expected tags: 'text', 'file', 'data'",
                }
            ],
        ),
    ],
    ids=[
        "parts-not-list",
        "only-kind",
        "no-messageId",
        "no-role",
        "no-parts",
        "empty-parts",
        "bad-role",
        "bad-part",
    ],
)
async def test_dispatch_message_send_bad_message_invalid_params(
    message: dict[str, Any], data: list[dict[str, str]]
) -> None:
    body = {"jsonrpc": "2.0", "method": "message/send", "params": {"message": message}, "id": "r1"}
    assert await answer(body) == error("r1", -32602, "Invalid parameters for message/send", data)


async def test_dispatch_tasks_get_wrong_field_invalid_params() -> None:
    body = {"jsonrpc": "2.0", "method": "tasks/get", "params": {"taskId": 12345}, "id": 4}
    assert await answer(body) == error(
        4,
        -32602,
        "Invalid parameters for tasks/get",
        [{"field": "id", "message": "Field required"}],
    )


async def test_dispatch_missing_params_invalid_params() -> None:
    body = {"jsonrpc": "2.0", "method": "tasks/get", "id": 4}
    assert await answer(body) == error(
        4,
        -32602,
        "Invalid parameters for tasks/get",
        [{"field": "id", "message": "Field required"}],
    )


@pytest.mark.parametrize(
    "text",
    ["héllo wörld ✓ 日本語 🚀", "control \x00\x01\x1f\t\n chars", "x" * (1024 * 1024)],
    ids=["unicode", "control-chars", "1MiB"],
)
async def test_dispatch_message_send_text_success(text: str) -> None:
    message = {**USER_MESSAGE, "parts": [{"kind": "text", "text": text}]}
    body = {"jsonrpc": "2.0", "method": "message/send", "params": {"message": message}, "id": 2}
    response = await answer(body)
    assert response == {
        "jsonrpc": "2.0",
        "id": 2,
        "result": {
            "id": "t1",
            "contextId": "c1",
            "status": {"state": "submitted"},
            "history": [{**message, "taskId": "t1", "contextId": "c1", "kind": "message"}],
            "kind": "task",
        },
    }


async def test_dispatch_unknown_fields_tolerated_and_dropped() -> None:
    message = {**USER_MESSAGE, "kind": "message", "shiny": {"new": "field"}}
    body = {
        "jsonrpc": "2.0",
        "method": "message/send",
        "params": {"message": message, "extra": 1},
        "id": 2,
        "trace": "x",
    }
    response = await answer(body)
    assert response["result"]["history"] == [
        {**USER_MESSAGE, "taskId": "t1", "contextId": "c1", "kind": "message"}
    ]


async def test_dispatch_integer_id_beyond_64_bits_invalid_request() -> None:
    # orjson reads integers beyond 64 bits as floats, and a float is no valid id.
    body = b'{"jsonrpc":"2.0","method":"tasks/get","params":{"id":"t"},"id":123456789012345678901234567890}'
    assert await answer(body) == error(
        None, -32600, "Request payload validation error: 'id' must be a string or an integer"
    )


async def test_dispatch_handler_error_converted_with_id() -> None:
    body = {"jsonrpc": "2.0", "method": "tasks/get", "params": {"id": "t9"}, "id": "q"}
    assert await answer(body) == error("q", -32001, "Task not found: 't9'")


async def test_dispatch_unexpected_exception_internal_error_without_detail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = {"jsonrpc": "2.0", "method": "tasks/cancel", "params": {"id": "t"}, "id": 5}
    assert await answer(body) == error(5, -32603, "Internal error")
    assert [r.message for r in caplog.records] == ["Unexpected error answering JSON-RPC request 5"]


async def test_dispatch_method_without_handler_unsupported_operation() -> None:
    body = {"jsonrpc": "2.0", "method": "tasks/pushNotificationConfig/list", "params": {"id": "t"}}
    assert await answer({**body, "id": 11}) == error(
        11, -32004, "This operation is not supported: tasks/pushNotificationConfig/list"
    )


async def test_dispatch_later_method_bad_params_invalid_params_first() -> None:
    body = {"jsonrpc": "2.0", "method": "tasks/resubscribe", "params": {}, "id": 12}
    assert await answer(body) == error(
        12,
        -32602,
        "Invalid parameters for tasks/resubscribe",
        [{"field": "id", "message": "Field required"}],
    )


def _nested(levels: int) -> Any:
    value: Any = {}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


@pytest.mark.parametrize(
    ("params", "field", "problem"),
    [
        (
            {"message": {**USER_MESSAGE, "metadata": _nested(65)}},
            "message.metadata",
            "nested deeper than 64 levels",
        ),
        (
            {"message": USER_MESSAGE, "metadata": _nested(300)},
            "metadata",
            "nested deeper than 64 levels",
        ),
        (
            {"message": {**USER_MESSAGE, "parts": [{"kind": "data", "data": _nested(65)}]}},
            "message.parts.0.data",
            "nested deeper than 64 levels",
        ),
        (
            {"message": {**USER_MESSAGE, "contextId": "c" * 100_000}},
            "message.contextId",
            "longer than 1024 characters (100000)",
        ),
        (
            {"message": {**USER_MESSAGE, "parts": [{"kind": "text", "text": "x"}] * 1001}},
            "message.parts",
            "more than 1000 parts (1001)",
        ),
    ],
    ids=[
        "message-metadata-65",
        "params-metadata-300",
        "data-65",
        "context-id-100000",
        "1001-parts",
    ],
)
async def test_dispatch_message_send_over_an_input_limit_invalid_params_naming_it(
    params: dict[str, Any], field: str, problem: str
) -> None:
    body = {"jsonrpc": "2.0", "method": "message/send", "params": params, "id": "r2"}
    # orjson writes no more than 254 levels: the standard library writes this body.
    assert await answer(json.dumps(body).encode()) == error(
        "r2",
        -32602,
        f"Invalid parameters for message/send: {field}: {problem}",
        [{"field": field, "message": problem}],
    )


async def test_dispatch_tasks_get_id_over_1024_characters_invalid_params() -> None:
    body = {"jsonrpc": "2.0", "method": "tasks/get", "params": {"id": "t" * 1025}, "id": 13}
    assert await answer(body) == error(
        13,
        -32602,
        "Invalid parameters for tasks/get: id: longer than 1024 characters (1025)",
        [{"field": "id", "message": "longer than 1024 characters (1025)"}],
    )


async def test_dispatch_1_0_send_over_an_input_limit_is_a_bad_request() -> None:
    message = {"role": "ROLE_USER", "parts": [{"text": "hi"}], "messageId": "m1"}
    body = {
        "jsonrpc": "2.0",
        "method": "SendMessage",
        "params": {"message": {**message, "metadata": _nested(65)}},
        "id": 14,
    }
    response = await dispatcher.dispatch(orjson.dumps(body))
    assert response == {
        "jsonrpc": "2.0",
        "id": 14,
        "error": {
            "code": -32602,
            "message": "Invalid parameters for SendMessage: message.metadata: nested deeper "
            "than 64 levels",
            "data": [
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [
                        {"field": "message.metadata", "description": "nested deeper than 64 levels"}
                    ],
                }
            ],
        },
    }


async def test_dispatch_body_nested_deeper_than_the_parser_reads_parse_error() -> None:
    metadata = b'{"k":' * 10_000 + b"{}" + b"}" * 10_000
    body = (
        b'{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":'
        b'{"role":"user","parts":[{"kind":"text","text":"hi"}],"messageId":"m","metadata":'
        + metadata
        + b"}}}"
    )
    assert await answer(body) == error(
        None,
        -32700,
        "Invalid JSON payload: nested deeper than 1024 levels "
        "(depth limit exceeded: line 1 column 5255 (char 5254))",
    )
