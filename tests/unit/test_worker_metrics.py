"""The worker's metrics settings: where the endpoint listens, and off."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from temporalio.common import MetricMeter

from workers import WorkerSettings
from workers.cli import metrics_runtime


def test_worker_settings_metrics_endpoint_defaults_and_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("A2A_WORKER_METRICS_HOST", raising=False)
    monkeypatch.delenv("A2A_WORKER_METRICS_PORT", raising=False)
    default = WorkerSettings()
    assert (default.metrics_host, default.metrics_port) == ("127.0.0.1", 9464)
    monkeypatch.setenv("A2A_WORKER_METRICS_HOST", "::")
    monkeypatch.setenv("A2A_WORKER_METRICS_PORT", "9100")
    configured = WorkerSettings()
    assert (configured.metrics_host, configured.metrics_port) == ("::", 9100)


def test_worker_settings_metrics_host_name_refused_naming_the_variable() -> None:
    with pytest.raises(ValidationError) as caught:
        WorkerSettings(metrics_host="localhost")
    assert [error["msg"] for error in caught.value.errors()] == [
        "Value error, A2A_WORKER_METRICS_HOST must be an IP address such as 127.0.0.1 or "
        "0.0.0.0, not 'localhost'"
    ]


def test_worker_metrics_port_zero_serves_nothing() -> None:
    runtime = metrics_runtime(WorkerSettings(metrics_port=0))
    assert runtime.metric_meter is MetricMeter.noop
