"""The import direction of docs/architecture.md ("Layout and import direction"), checked on every module:
a package or gateway sub-package imports only what its row allows, and `a2a-gateway send` loads none of
the server."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("protocol", "config", "content", "workflows", "workers", "gateway")
SERVER_BASE = {"protocol", "config", "gateway.settings"}
# Unit -> the other units it may import (a unit always imports itself). A unit is a top-level package,
# or a module or sub-package of `gateway`.
ALLOWED: dict[str, set[str]] = {
    "protocol": set(),
    "config": {"protocol"},
    "content": {"protocol"},
    "workflows": {"protocol"},
    "workers": {"protocol", "config", "content", "workflows"},
    "gateway.settings": {"protocol", "config", "workflows"},
    "gateway.metrics": {"protocol"},
    "gateway.responses": {"protocol"},
    "gateway.cards": {"protocol", "config"},
    "gateway.tasks": SERVER_BASE | {"content", "workflows"},
    "gateway.access": SERVER_BASE | {"gateway.responses", "gateway.tasks"},
    "gateway.streaming": SERVER_BASE | {"gateway.access", "gateway.metrics", "gateway.responses"},
    "gateway.rpc": SERVER_BASE
    | {
        "gateway.access",
        "gateway.cards",
        "gateway.metrics",
        "gateway.responses",
        "gateway.streaming",
        "gateway.tasks",
    },
    "gateway.ui": SERVER_BASE | {"gateway.access", "gateway.cards"},
    "gateway.probes": {"protocol", "gateway.responses"},
    "gateway.runtime": SERVER_BASE
    | {
        "content",
        "workflows",
        "gateway.access",
        "gateway.cards",
        "gateway.metrics",
        "gateway.rpc",
        "gateway.streaming",
        "gateway.tasks",
    },
    "gateway.app": SERVER_BASE
    | {
        "gateway.access",
        "gateway.cards",
        "gateway.metrics",
        "gateway.probes",
        "gateway.responses",
        "gateway.rpc",
        "gateway.runtime",
        "gateway.streaming",
        "gateway.ui",
    },
    "gateway.server": SERVER_BASE | {"gateway.access", "gateway.app", "gateway.streaming"},
    "gateway.client": set(),
    "gateway.devstack": SERVER_BASE | {"workflows"},
    "gateway.cli": {"gateway.client", "config"},
    "gateway.__main__": {"gateway.cli"},
    "gateway": set(),
}


def unit_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "gateway" and len(parts) > 1 else parts[0]


def our_imports(path: Path) -> set[str]:
    """Every module of ours that `path` imports, at any depth of its code."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    return {name for name in imported if name.split(".")[0] in OURS}


def modules() -> list[tuple[str, Path]]:
    found = []
    for package in OURS:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found.append((module.removesuffix(".__init__"), path))
    return found


def test_every_unit_has_a_row() -> None:
    assert {unit_of(module) for module, _ in modules()} == set(ALLOWED)


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_module_imports_only_what_its_unit_may(module: str, path: Path) -> None:
    unit = unit_of(module)
    against = sorted(
        name
        for name in our_imports(path)
        if unit_of(name) != unit and unit_of(name) not in ALLOWED[unit]
    )
    assert against == [], f"{module} ({unit}) imports against docs/architecture.md"


def test_client_commands_load_none_of_the_server() -> None:
    probe = (
        "import sys, gateway.cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'temporalio', 'starlette', 'uvicorn', 'redis', 'opentelemetry', 'pydantic'}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert loaded == "[]\n"


def test_every_folder_of_code_is_a_package() -> None:
    """A folder without `__init__.py` is a namespace package, which `pip install .` (the image) leaves
    out while an editable install still finds it."""
    folders = {path.parent for package in OURS for path in (ROOT / package).rglob("*.py")}
    assert (
        sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").exists()) == []
    )


MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def test_no_production_module_or_function_is_too_long() -> None:
    """What ruff's C90 (10, in pyproject.toml) does not cover: a module past 400 lines or a function
    past 60 is split."""
    too_long = []
    for package in OURS:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text()
            name = str(path.relative_to(ROOT))
            if text.count("\n") > MAX_MODULE_LINES:
                too_long.append(f"{name}: {text.count(chr(10))} lines")
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = (node.end_lineno or node.lineno) - node.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        too_long.append(f"{name}: {node.name} is {lines} lines")
    assert too_long == []
