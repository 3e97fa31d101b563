"""The console's screenshots in docs/images/, taken by `tests/e2e/test_screenshots.py` against the browser
tests' stack (Temporal, Redis, echo workers, a gateway; Debian's Chromium):

    .venv/bin/python -m tests.e2e.screenshots

The test also runs with the rest of tests/e2e, writing to .a2a/test-artifacts/screenshots/ instead, so the
views it shows stay right."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Where the test writes its PNG files; unset: .a2a/test-artifacts/screenshots/.
SCREENSHOTS_ENV = "A2A_CONSOLE_SCREENSHOTS"
DOCS_IMAGES = ROOT / "docs" / "images"
DEFAULT_DIR = ROOT / ".a2a" / "test-artifacts" / "screenshots"


def screenshots_dir() -> Path:
    return Path(os.environ.get(SCREENSHOTS_ENV) or DEFAULT_DIR)


def main() -> int:
    os.environ[SCREENSHOTS_ENV] = str(DOCS_IMAGES)
    test = Path(__file__).with_name("test_screenshots.py")
    return int(pytest.main(["-q", "-p", "no:cacheprovider", str(test)]))


if __name__ == "__main__":
    sys.exit(main())
