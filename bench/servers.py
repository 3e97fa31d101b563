"""What the servers `bench.compare` starts share: how they run until stopped, and how they leave."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import NoReturn

import uvicorn
from starlette.types import ASGIApp

logger = logging.getLogger(__name__)


def run_then_exit(run: Callable[[], object], name: str) -> NoReturn:
    """Run `run` until it returns (SIGTERM/SIGINT), then leave with 0, or 1 when it failed, without
    running finalizers: temporalio can abort at interpreter exit."""
    code = 0
    try:
        run()
    except Exception:
        logger.exception("%s failed", name)
        code = 1
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def serve(app: ASGIApp, host: str, port: int, name: str) -> NoReturn:
    """Run `app` under uvicorn as every HTTP server `bench.compare` measures runs: uvicorn's defaults,
    access log off (log_config=None: uvicorn's own messages go through the caller's logging)."""
    run_then_exit(
        lambda: uvicorn.run(app, host=host, port=port, log_config=None, access_log=False), name
    )
