"""What every benchmark driver shares: its error type, percentiles, log files, stopping what it started on
Ctrl-C or SIGTERM, and leaving the process the way temporalio needs."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import IO, NoReturn

from gateway.devstack import DevStackError, ManagedProcess

logger = logging.getLogger("bench")


class BenchError(Exception):
    """The benchmark could not run or got a wrong answer (never a slow figure: figures are reported)."""


def percentile(sorted_samples: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    position = (len(sorted_samples) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(sorted_samples) - 1)
    return sorted_samples[low] + (sorted_samples[high] - sorted_samples[low]) * (position - low)


def open_log(logs: Path, name: str) -> IO[bytes]:
    return (logs / f"{name}.log").open("wb")


_interrupted: list[int] = []


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # Ctrl-C reaches the children too, so what fails next may be a request to a server that has just
    # stopped rather than this KeyboardInterrupt: `exit_with` reads the signal from here.
    _interrupted.append(signum)
    raise KeyboardInterrupt


@contextlib.contextmanager
def stopping(started: list[ManagedProcess]) -> Iterator[None]:
    """SIGTERM ends the run as Ctrl-C does; either way every process in `started` is stopped."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # as `nohup` leaves it: keep ignoring
            signal.signal(signum, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for process in reversed(started):
            if process.running():
                logger.info("stopping %s (pid %d)", process.name, process.pid)
            process.stop()


def _failed(reason: str, *, trace: bool = False) -> int:
    if _interrupted:
        logger.warning("interrupted (%s)", reason)
        return 130
    logger.error("benchmark failed: %s", reason, exc_info=trace)
    return 1


def exit_with(run: Callable[[], int]) -> NoReturn:
    """Run a benchmark and leave with its exit code: 0, 1 on failure, 130 when interrupted."""
    try:
        code = run()
    except KeyboardInterrupt:
        logger.warning("interrupted")
        code = 130
    except (BenchError, DevStackError) as err:
        code = _failed(str(err))
    except Exception as err:
        code = _failed(f"{type(err).__name__}: {err}", trace=True)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # temporalio can abort at interpreter exit; leave without running finalizers.
    os._exit(code)
