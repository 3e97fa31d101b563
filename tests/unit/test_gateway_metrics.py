"""The gateway's request metrics, counted in plain numbers, expose exactly what prometheus_client's
`Counter` and `Histogram` would for the same requests."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from gateway.metrics import (
    _LATENCY_BUCKETS,
    REQUEST_SECONDS,
    REQUEST_SECONDS_HELP,
    REQUESTS,
    REQUESTS_HELP,
    _Requests,
)

# Durations on a bucket's bound (Prometheus's `le` is inclusive), between bounds, past the last
# bound and zero; two methods and two codes.
_OBSERVED = [
    ("tasks/get", "ok", 0.005),
    ("tasks/get", "ok", 0.0051),
    ("tasks/get", "ok", 0.0),
    ("tasks/get", "-32001", 0.1),
    ("message/send", "ok", 0.73),
    ("message/send", "ok", 60.0),
    ("message/send", "ok", 61.5),
    ("tasks/get", "ok", 1e-06),
]


def test_request_metrics_expose_what_a_counter_and_a_histogram_would() -> None:
    ours = CollectorRegistry()
    requests = _Requests()
    ours.register(requests)
    library = CollectorRegistry()
    counter = Counter(REQUESTS, REQUESTS_HELP, ["method", "code"], registry=library)
    histogram = Histogram(
        REQUEST_SECONDS,
        REQUEST_SECONDS_HELP,
        ["method", "code"],
        buckets=_LATENCY_BUCKETS,
        registry=library,
    )
    for method, code, seconds in _OBSERVED:
        requests.observe(method, code, seconds)
        counter.labels(method, code).inc()
        histogram.labels(method, code).observe(seconds)

    exposed = generate_latest(ours).decode()
    assert exposed == generate_latest(library).decode()
    assert 'a2a_request_duration_seconds_bucket{code="ok",le="0.005",method="tasks/get"} 3.0' in (
        exposed.splitlines()
    )
