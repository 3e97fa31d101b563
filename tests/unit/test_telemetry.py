"""The JSON log line format and how the `OTEL_*` variables turn tracing on."""

from __future__ import annotations

import contextvars
import logging
import sys

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from config.telemetry import (
    JsonFormatter,
    TelemetryConfigError,
    annotate_task,
    configure_tracing,
    remember_span,
    span_exporter,
)

# 2026-11-23T10:20:30.123Z
CREATED = 1795429230.123456


def record(message: str, *args: object, exc_info: bool = False) -> logging.LogRecord:
    line = logging.LogRecord("gateway.app", logging.WARNING, __file__, 1, message, args, None)
    line.created = CREATED
    if exc_info:
        try:
            raise ValueError("boom")
        except ValueError:
            line.exc_info = sys.exc_info()
    return line


def formatted(line: logging.LogRecord) -> dict[str, object]:
    parsed: dict[str, object] = orjson.loads(JsonFormatter().format(line))
    return parsed


def test_a_log_line_outside_any_request_has_no_ids() -> None:
    assert contextvars.Context().run(formatted, record("task %s is %s", "t1", "late")) == {
        "time": "2026-11-23T10:20:30.123Z",
        "level": "WARNING",
        "logger": "gateway.app",
        "message": "task t1 is late",
    }


def test_a_log_line_in_a_span_about_a_task_carries_trace_span_and_task_ids() -> None:
    tracer = TracerProvider().get_tracer(__name__)

    def in_request() -> tuple[dict[str, object], int, int]:
        with tracer.start_as_current_span("message/send") as span:
            annotate_task("task-1", "context-1")
            context = span.get_span_context()
            return formatted(record("hello")), context.trace_id, context.span_id

    line, trace_id, span_id = contextvars.Context().run(in_request)
    assert line == {
        "time": "2026-11-23T10:20:30.123Z",
        "level": "WARNING",
        "logger": "gateway.app",
        "message": "hello",
        "trace_id": f"{trace_id:032x}",
        "span_id": f"{span_id:016x}",
        "task_id": "task-1",
    }


def test_the_access_log_after_the_span_ended_carries_the_requests_ids() -> None:
    tracer = TracerProvider().get_tracer(__name__)

    def request() -> tuple[dict[str, object], int]:
        with tracer.start_as_current_span("tasks/get") as span:
            remember_span(span)
            annotate_task("task-2")
        return formatted(record("POST / HTTP/1.1 200")), span.get_span_context().trace_id

    line, trace_id = contextvars.Context().run(request)
    assert line["trace_id"] == f"{trace_id:032x}"
    assert line["task_id"] == "task-2"


def test_an_exception_is_one_field_of_the_line() -> None:
    line = contextvars.Context().run(formatted, record("failed", exc_info=True))
    assert line["message"] == "failed"
    exception = line["exception"]
    assert isinstance(exception, str)
    assert exception.startswith("Traceback (most recent call last):")
    assert exception.endswith("ValueError: boom")


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"OTEL_TRACES_EXPORTER": "none"},
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
        {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
    ],
)
def test_tracing_is_off_unless_an_exporter_is_asked_for(environ: dict[str, str]) -> None:
    assert configure_tracing("a2a-test", environ) is None


@pytest.mark.parametrize(
    ("environ", "exporter"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, OTLPSpanExporter),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, OTLPSpanExporter),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, OTLPSpanExporter),
        ({"OTEL_TRACES_EXPORTER": "console"}, ConsoleSpanExporter),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            OTLPSpanExporter,
        ),
    ],
)
def test_the_exporter_follows_the_standard_variables(
    environ: dict[str, str], exporter: type[object]
) -> None:
    assert type(span_exporter(environ)) is exporter


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL=grpc: this build sends OTLP as http/protobuf "
            "(the collector's port 4318); set it to http/protobuf",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "zipkin"},
            "OTEL_TRACES_EXPORTER=zipkin: this build exports with otlp or console (or none)",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "otlp,console"},
            "OTEL_TRACES_EXPORTER=otlp,console: name one exporter (otlp, console or none)",
        ),
    ],
)
def test_an_exporter_this_build_lacks_fails_naming_the_variable(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(TelemetryConfigError) as raised:
        configure_tracing("a2a-test", environ)
    assert str(raised.value) == message
