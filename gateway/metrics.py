"""The gateway's Prometheus metrics, served at `GET /metrics`: JSON-RPC requests, and the event streams
(what they hold, what they deliver and how late). Each app has a registry of its own, so two gateways in
one process (tests) count apart. Workers export what happens on their side (events published, tasks
by final state, push deliveries) on a port of their own.
"""

from __future__ import annotations

import bisect
import itertools
import math
import time
from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from protocol import METHOD_PARAMS
from protocol.v1 import V1_METHOD_PARAMS

# Prometheus's text format has no use for the `*_created` series, which would double every family; the
# setting is process-wide.
disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Methods are labelled by name only when they are A2A's: a client cannot mint label values.
OTHER_METHOD = "other"
OK = "ok"
# The outcome of a request whose client went away before its body had arrived (no JSON-RPC error: nobody
# was left to answer).
CLIENT_DISCONNECTED = "client_disconnected"

# The request metrics: their names and help texts.
REQUESTS = "a2a_requests"
REQUESTS_HELP = (
    "JSON-RPC requests by method and outcome (ok, the JSON-RPC error code, or "
    "client_disconnected: the client went away before its body arrived)"
)
REQUEST_SECONDS = "a2a_request_duration_seconds"
REQUEST_SECONDS_HELP = "Time to answer a JSON-RPC request; for a stream, until its response starts"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# The buckets' `le` labels, as prometheus_client writes them.
_LATENCY_LE = [
    floatToGoString(bound)  # type: ignore[no-untyped-call]
    for bound in (*_LATENCY_BUCKETS, math.inf)
]
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_STREAM_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600)


_METHODS = (
    frozenset(METHOD_PARAMS) | frozenset(V1_METHOD_PARAMS) | {"agent/getAuthenticatedExtendedCard"}
)


def method_label(method: object) -> str:
    return method if isinstance(method, str) and method in _METHODS else OTHER_METHOD


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self._requests = _Requests()
        registry.register(self._requests)
        self.active_streams = Gauge(
            "a2a_active_streams",
            "Event streams open now, by view (a2a: message/stream and tasks/resubscribe; browser: "
            "GET /tasks/{id}/events; ws: a task subscribed on a /ws socket)",
            ["view"],
            registry=registry,
        )
        self.events_delivered = Counter(
            "a2a_events_delivered",
            "Events written to clients, by view (a2a, browser: SSE events; ws: event frames)",
            ["view"],
            registry=registry,
        )
        self.fanout_lag = Histogram(
            "a2a_fanout_lag_seconds",
            "From an event's append to the task's log (its entry id, Redis's clock) to its write to "
            "a client, for events that arrive live",
            ["view"],
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self.first_token = Histogram(
            "a2a_first_token_seconds",
            "From a message/stream request's arrival to the first artifact chunk written to it",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.stream_seconds = Histogram(
            "a2a_stream_duration_seconds",
            "How long event streams stayed open, by view (ws: from a subscription's start to its "
            "end, unsubscribe or the socket's close)",
            ["view"],
            buckets=_STREAM_BUCKETS,
            registry=registry,
        )
        self.slow_consumers = Counter(
            "a2a_slow_consumer_disconnects",
            "Streams closed because the client fell behind: its buffer overflowed (buffer) or it "
            "took no write for the write timeout (write_timeout); ws: a subscription ended with "
            "-32013 (buffer), a whole socket closed (write_timeout)",
            ["view", "reason"],
            registry=registry,
        )

    def observe_request(self, method: str, code: str, started: float) -> None:
        """`started`: `time.perf_counter()` when the request arrived."""
        self._requests.observe(method, code, time.perf_counter() - started)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Requests(Collector):
    """The JSON-RPC requests' counter and latency histogram by method and code, as prometheus_client's
    `Counter` and `Histogram` would expose them, counted in plain numbers: every request adds to them,
    and the library's locks and child lookups were a few percent of a `tasks/get`. Methods and codes
    are few (`method_label`), so are their series; one event loop counts, and renders them."""

    def __init__(self) -> None:
        # (method, code) -> [count, sum of seconds, then the count in each bucket (not cumulative)].
        self._series: dict[tuple[str, str], list[float]] = {}

    def observe(self, method: str, code: str, seconds: float) -> None:
        series = self._series.get((method, code))
        if series is None:
            series = self._series[(method, code)] = [0, 0.0] + [0] * (len(_LATENCY_BUCKETS) + 1)
        series[0] += 1
        series[1] += seconds
        series[2 + bisect.bisect_left(_LATENCY_BUCKETS, seconds)] += 1

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(REQUESTS, REQUESTS_HELP, labels=["method", "code"])
        seconds = HistogramMetricFamily(
            REQUEST_SECONDS, REQUEST_SECONDS_HELP, labels=["method", "code"]
        )
        for (method, code), series in self._series.items():
            requests.add_metric([method, code], series[0])
            counts = itertools.accumulate(series[2:])
            seconds.add_metric(
                [method, code],
                buckets=list(zip(_LATENCY_LE, counts, strict=True)),
                sum_value=series[1],
            )
        yield requests
        yield seconds
