"""Validation of what the gateway emits against the official A2A v0.2.5 JSON schema (a copy of
`shared/a2a/a2a-v0.2.5.schema.json`, so a clean clone runs the tests)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

SCHEMA_PATH = Path(__file__).parent / "schema" / "a2a-v0.2.5.schema.json"

RESPONSE_TYPES = {
    "message/send": "SendMessageResponse",
    "message/stream": "SendStreamingMessageResponse",
    "tasks/get": "GetTaskResponse",
    "tasks/cancel": "CancelTaskResponse",
    "tasks/pushNotificationConfig/set": "SetTaskPushNotificationConfigResponse",
    "tasks/pushNotificationConfig/get": "GetTaskPushNotificationConfigResponse",
    "tasks/pushNotificationConfig/list": "ListTaskPushNotificationConfigResponse",
    "tasks/pushNotificationConfig/delete": "DeleteTaskPushNotificationConfigResponse",
    "tasks/resubscribe": "SendStreamingMessageResponse",
}


@functools.cache
def schema_validator(path: Path, definition: str) -> Draft7Validator:
    """A validator of `definition` in the JSON schema at `path`."""
    schema = json.loads(path.read_text())
    return Draft7Validator(
        {"$ref": f"#/definitions/{definition}", "definitions": schema["definitions"]}
    )


def _validator(definition: str) -> Draft7Validator:
    return schema_validator(SCHEMA_PATH, definition)


def assert_valid(instance: Any, definition: str) -> None:
    errors = sorted(_validator(definition).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"not a valid {definition}: " + "; ".join(
        f"{list(e.path)}: {e.message}" for e in errors[:5]
    )


def assert_valid_response(body: Any, method: Any) -> None:
    """A JSON-RPC response body: an error response, or the success response type of `method`."""
    if isinstance(body, dict) and "error" in body:
        assert_valid(body, "JSONRPCErrorResponse")
    else:
        assert_valid(body, RESPONSE_TYPES[method])
