"""Validation of what the gateway emits in A2A 1.0 and 0.3 against the official specifications: 1.0 by
parsing into the 1.0 proto (`tests/schema/a2a-v1.0.1.proto`, compiled once per session) with
`ignore_unknown_fields=False`, 0.3 against its JSON schema (`tests/schema/a2a-v0.3.0.schema.json`)."""

from __future__ import annotations

import functools
import importlib
import sys
import sysconfig
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from google.protobuf import json_format
from grpc_tools import protoc  # type: ignore[import-untyped]

from tests.a2a_schema import schema_validator

SCHEMA_DIR = Path(__file__).parent / "schema"
PROTO = "a2a-v1.0.1.proto"


@functools.cache
def _proto_module() -> ModuleType:
    out = Path(tempfile.mkdtemp(prefix="a2a-v1-proto-"))
    # protoc names the module after the file; a copy under an importable name.
    (out / "a2a_v1.proto").write_text((SCHEMA_DIR / PROTO).read_text())
    site = Path(sysconfig.get_paths()["purelib"])
    well_known = Path(protoc.__file__).parent / "_proto"
    code = protoc.main(
        [
            "protoc",
            f"-I{out}",
            f"-I{site}",
            f"-I{well_known}",
            f"--python_out={out}",
            str(out / "a2a_v1.proto"),
        ]
    )
    assert code == 0, f"protoc could not compile {PROTO}"
    sys.path.insert(0, str(out))
    return importlib.import_module("a2a_v1_pb2")


def assert_valid_v1(instance: Any, message: str) -> None:
    """`instance` is the JSON form of the 1.0 proto message `message` (e.g. "Task", "StreamResponse")."""
    proto = getattr(_proto_module(), message)()
    json_format.ParseDict(instance, proto, ignore_unknown_fields=False)


def v1_part(card: dict[str, Any]) -> dict[str, Any]:
    """The 1.0 fields of a combined card: what remains once 0.3's own top-level fields are set aside,
    with the 0.3 spellings merged into its security schemes taken out again."""
    v03_only = {
        "url",
        "preferredTransport",
        "protocolVersion",
        "additionalInterfaces",
        "security",
        "supportsAuthenticatedExtendedCard",
    }
    v1 = {key: value for key, value in card.items() if key not in v03_only}
    capabilities = dict(v1.get("capabilities", {}))
    capabilities.pop("stateTransitionHistory", None)
    v1["capabilities"] = capabilities
    if "securitySchemes" in v1:
        v1["securitySchemes"] = {
            name: {key: value for key, value in scheme.items() if key.endswith("SecurityScheme")}
            for name, scheme in v1["securitySchemes"].items()
        }
    return v1


def assert_valid_v03(instance: Any, definition: str) -> None:
    validator = schema_validator(SCHEMA_DIR / "a2a-v0.3.0.schema.json", definition)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"not a valid 0.3 {definition}: " + "; ".join(
        f"{list(e.path)}: {e.message}" for e in errors[:5]
    )
