"""What this process's streams may hold and how they are counted: the caps on concurrent streams (in
all, and per principal), each stream's lease under them, and the stream metrics."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence

from gateway.metrics import GatewayMetrics
from gateway.streaming.log import LogEntry
from protocol import RateLimitedError, ServerBusyError


def count_delivered(
    metrics: GatewayMetrics, view: str, entries: Sequence[LogEntry], *, live: bool
) -> None:
    """Count `entries` as written to a client of `view`; when they arrived `live` (not read back from
    the log), observe each one's fan-out lag."""
    metrics.events_delivered.labels(view).inc(len(entries))
    if live:
        now_ms = time.time() * 1000
        lag = metrics.fanout_lag.labels(view)
        for entry in entries:
            lag.observe(max(0.0, now_ms - entry.key[0]) / 1000)


@contextlib.contextmanager
def streaming(metrics: GatewayMetrics, view: str) -> Iterator[None]:
    """One stream of `view` serving its client: counted as active meanwhile, its duration observed
    at the end."""
    active = metrics.active_streams.labels(view)
    active.inc()
    opened = time.perf_counter()
    try:
        yield
    finally:
        active.dec()
        metrics.stream_seconds.labels(view).observe(time.perf_counter() - opened)


class StreamLimiter:
    """The caps on concurrent streams in this process: in all, and per principal."""

    def __init__(self, limit: int, per_principal: int | None = None) -> None:
        self.limit = limit
        self.per_principal = per_principal
        self.active = 0
        self.by_principal: dict[str, int] = {}

    def lease(self, principal: str | None = None) -> Lease:
        if self.active >= self.limit:
            raise ServerBusyError(
                "Server busy: this gateway process is at its limit of concurrent streams "
                f"({self.limit}); retry in a moment (any replica can serve the task)"
            )
        if principal is not None and self.per_principal is not None:
            held = self.by_principal.get(principal, 0)
            if held >= self.per_principal:
                raise RateLimitedError(
                    f"Rate limit exceeded: {self.per_principal} concurrent streams per caller "
                    "on this gateway process; close one first"
                )
            self.by_principal[principal] = held + 1
        self.active += 1
        return Lease(self, principal if self.per_principal is not None else None)

    def _release(self, principal: str | None) -> None:
        self.active -= 1
        if principal is not None:
            held = self.by_principal.pop(principal) - 1
            if held:
                self.by_principal[principal] = held


class Lease:
    """One stream's place under the caps; released once, whoever gets there first."""

    def __init__(self, limiter: StreamLimiter, principal: str | None = None) -> None:
        self._limiter: StreamLimiter | None = limiter
        self._principal = principal

    def release(self) -> None:
        if self._limiter is not None:
            self._limiter._release(self._principal)
            self._limiter = None
