"""The installed package's version, for `a2a-gateway --version` and `a2a-worker --version`."""

from __future__ import annotations

import importlib.metadata

DISTRIBUTION = "a2a-temporal-gateway"


def package_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"
