"""How both processes are observed: the task a log line or span is about, the JSON log line format, and
tracing as the standard `OTEL_*` variables ask for it. The gateway and the workers share these, so a
trace id or a task id reads the same in either's logs. Importing this module configures nothing; the
entry points call `configure_logging` and `configure_tracing` once in `main()`.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any, Literal

import orjson
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

TASK_ID_ATTRIBUTE = "a2a.task_id"
CONTEXT_ID_ATTRIBUTE = "a2a.context_id"

_task_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("a2a_task_id", default=None)
# The span a request was served under, for its log lines written after the span ended (the access log).
_served_by: contextvars.ContextVar[trace.SpanContext | None] = contextvars.ContextVar(
    "a2a_served_by", default=None
)


# A caller's `traceparent` is continued; its `baggage` is not taken: it would ride into every workflow's
# history and activity.
_TRACE_CONTEXT = TraceContextTextMapPropagator()


class TelemetryConfigError(Exception):
    """An `OTEL_*` variable asks for something this build cannot do; the message names it."""


def annotate_task(task_id: str, context_id: str | None = None) -> None:
    """Mark the current request or activity as being about `task_id`: its span gets the ids as
    attributes and its log lines (JSON format) the task id."""
    _task_id.set(task_id)
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(TASK_ID_ATTRIBUTE, task_id)
        if context_id is not None:
            span.set_attribute(CONTEXT_ID_ATTRIBUTE, context_id)


def caller_context(headers: Mapping[str, str]) -> Context:
    """The trace context a caller's `traceparent` header carries (empty without one)."""
    return _TRACE_CONTEXT.extract(headers)


def remember_span(span: trace.Span) -> None:
    """Let the rest of this request's log lines (the access log among them) carry `span`'s ids."""
    _served_by.set(span.get_span_context())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ms), level, logger, message, and when known the trace and
    span ids of the current span and the task id; a traceback as `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            context = _served_by.get() or context
        if context.is_valid:
            line["trace_id"] = format(context.trace_id, "032x")
            line["span_id"] = format(context.span_id, "016x")
        task_id = _task_id.get()
        if task_id is not None:
            line["task_id"] = task_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def _utc(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created * 1000) % 1000:03d}Z"


def configure_logging(log_format: LogFormat, level: int = logging.INFO) -> None:
    """The root logger's one handler, on stderr; uvicorn's loggers propagate to it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    logging.basicConfig(level=level, handlers=[handler], force=True)


def configure_tracing(
    default_service_name: str, environ: Mapping[str, str] = os.environ
) -> TracerProvider | None:
    """The global tracer provider the `OTEL_*` variables describe, with Redis commands traced; None
    (tracing off) unless an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or `..._TRACES_ENDPOINT`) is
    set or `OTEL_TRACES_EXPORTER` names an exporter, and always with `OTEL_SDK_DISABLED=true`. The
    caller shuts the provider down before exiting, which sends the spans still buffered."""
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    exporter = span_exporter(environ)
    if exporter is None:
        return None
    # OTEL_SERVICE_NAME, else a service.name in OTEL_RESOURCE_ATTRIBUTES, else ours.
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = Resource.create({"service.name": default_service_name})
    # The sampler comes from OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (parent-based, always on).
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    trace_redis(provider)
    return provider


def trace_redis(provider: trace.TracerProvider) -> None:
    """A client span for every Redis command and pipeline (arguments shown as `?`)."""
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor().instrument(tracer_provider=provider)


def tracing_enabled() -> bool:
    """Whether a real tracer provider is installed (by `configure_tracing`, or by a test)."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def span_exporter(environ: Mapping[str, str]) -> SpanExporter | None:
    """The exporter the `OTEL_*` variables name, None for none. Raises TelemetryConfigError."""
    names = [
        name.strip().lower()
        for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",")
        if name.strip()
    ]
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not names:
        names = ["otlp"] if endpoint else []
    if not names or names == ["none"]:
        return None
    if len(names) > 1:
        raise TelemetryConfigError(
            f"OTEL_TRACES_EXPORTER={environ['OTEL_TRACES_EXPORTER']}: name one exporter "
            "(otlp, console or none)"
        )
    if names[0] == "console":
        return ConsoleSpanExporter()
    if names[0] != "otlp":
        raise TelemetryConfigError(
            f"OTEL_TRACES_EXPORTER={names[0]}: this build exports with otlp or console (or none)"
        )
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = environ.get(variable)
        if protocol:
            if protocol != "http/protobuf":
                raise TelemetryConfigError(
                    f"{variable}={protocol}: this build sends OTLP as http/protobuf "
                    "(the collector's port 4318); set it to http/protobuf"
                )
            break
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # The exporter reads the endpoint, headers, timeout and TLS settings from OTEL_* itself.
    return OTLPSpanExporter()
