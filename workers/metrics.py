"""The worker's Prometheus metrics: Temporal's SDK metrics and ours, served by the Temporal runtime on one
port (`A2A_WORKER_METRICS_HOST`:`A2A_WORKER_METRICS_PORT`, at `/metrics`)."""

from __future__ import annotations

import logging
import os

from temporalio.common import MetricMeter
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from protocol import TERMINAL_STATES, TaskState

SERVICE_NAME = "a2a-worker"
# Names as created; the exporter adds `_total` to counters (`counters_total_suffix`).
EVENTS_PUBLISHED = "a2a_events_published"
TASKS_FINISHED = "a2a_tasks_finished"
TURNS_ENDED = "a2a_turns_ended"
PUSH_DELIVERIES = "a2a_push_deliveries"
FIRST_TOKEN_SECONDS = "a2a_agent_first_token_seconds"
TURN_SECONDS = "a2a_agent_turn_seconds"

# The exporter's default buckets stop at 10 s. A model's first token takes from tens of milliseconds
# (echo) to tens of seconds (a long prompt); a turn with tool calls can take minutes.
HISTOGRAM_BUCKETS: dict[str, list[float]] = {
    FIRST_TOKEN_SECONDS: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    TURN_SECONDS: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
}


class MetricsEndpointError(Exception):
    """The metrics endpoint could not start (its port is taken, say)."""


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def telemetry(metrics: PrometheusConfig | None = None) -> TelemetryConfig:
    """The worker's Temporal telemetry: the Rust core's warnings go through Python's logging (logger
    `temporalio.core`: the worker's log format, no terminal colour codes), and every metric carries the
    worker's service name (OTEL_SERVICE_NAME, else `a2a-worker`), not the core's `temporal-core-sdk`."""
    return TelemetryConfig(
        logging=LoggingConfig(
            filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
            forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
        ),
        metrics=metrics,
        global_tags={"service_name": os.environ.get("OTEL_SERVICE_NAME") or SERVICE_NAME},
        attach_service_name=False,
    )


def plain_runtime() -> Runtime:
    """A Temporal runtime without a metrics endpoint (its meter records nothing)."""
    return Runtime(telemetry=telemetry())


def prometheus_runtime(host: str, port: int) -> Runtime:
    """A Temporal runtime that serves its metrics at http://host:port/metrics. Pass it to
    `Client.connect`, and build `WorkerMetrics` from its `metric_meter`."""
    address = bind_address(host, port)
    config = PrometheusConfig(
        bind_address=address,
        # Prometheus conventions: counters end in `_total`, durations are seconds named `_seconds`
        # (Temporal's own default is integer milliseconds without a unit in the name).
        counters_total_suffix=True,
        unit_suffix=True,
        durations_as_seconds=True,
        histogram_bucket_overrides=HISTOGRAM_BUCKETS,
    )
    try:
        return Runtime(telemetry=telemetry(config))
    except ValueError as err:
        # The Rust core binds the port in the constructor and says only "Address already in use".
        raise MetricsEndpointError(
            f"cannot serve worker metrics on {address}: {err}; set A2A_WORKER_METRICS_PORT to a "
            "free port (0 turns the metrics endpoint off)"
        ) from err


class WorkerMetrics:
    """This worker's own instruments, labelled with the agent it serves."""

    def __init__(self, meter: MetricMeter, *, agent: str) -> None:
        meter = meter.with_additional_attributes({"agent": agent})
        self._events_published = meter.create_counter(
            EVENTS_PUBLISHED, "Task events written to the Redis event log, by type."
        )
        self._tasks_finished = meter.create_counter(
            TASKS_FINISHED, "Tasks that reached a terminal state, by state."
        )
        self._turns_ended = meter.create_counter(
            TURNS_ENDED,
            "Final task.completed events, by state: terminal states and input-required/auth-required.",
        )
        self._push_deliveries = meter.create_counter(
            PUSH_DELIVERIES,
            "Push notification delivery attempts, by outcome: delivered, retry, rejected, refused, "
            "deleted.",
        )
        self._first_token = meter.create_histogram_float(
            FIRST_TOKEN_SECONDS,
            "From the start of an agent attempt to its first artifact chunk in the event log.",
        )
        self._turn = meter.create_histogram_float(
            TURN_SECONDS, "Duration of the agent attempts that end their turn, by final state."
        )

    @classmethod
    def noop(cls) -> WorkerMetrics:
        return cls(MetricMeter.noop, agent="")

    def event_published(self, event_type: str, state: TaskState) -> None:
        """An event of `event_type` is in the log; `state` is the task's state after it."""
        self._events_published.add(1, {"type": event_type})
        if event_type == "task.completed":
            self._turns_ended.add(1, {"state": state.value})
            if state in TERMINAL_STATES:
                self._tasks_finished.add(1, {"state": state.value})

    def push_attempted(self, outcome: str) -> None:
        self._push_deliveries.add(1, {"outcome": outcome})

    def first_token(self, seconds: float) -> None:
        self._first_token.record(seconds)

    def turn_finished(self, state: TaskState, seconds: float) -> None:
        self._turn.record(seconds, {"state": state.value})
