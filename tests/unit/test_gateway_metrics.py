"""The gateway's request metrics, counted in plain numbers, expose exactly what prometheus_client's
`Counter` and `Histogram` would for the same requests."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from gateway.metrics import _LATENCY_BUCKETS, _Requests

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
    counter = Counter(
        "a2a_requests",
        "JSON-RPC requests by method and outcome (ok, the JSON-RPC error code, or "
        "client_disconnected: the client went away before its body arrived)",
        ["method", "code"],
        registry=library,
    )
    histogram = Histogram(
        "a2a_request_duration_seconds",
        "Time to answer a JSON-RPC request; for a stream, until its response starts",
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
