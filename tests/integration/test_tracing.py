"""One trace from the HTTP request to the Redis writes: a `message/send` carrying a W3C `traceparent`
through an in-process gateway and worker, both with Temporal's TracingInterceptor, spans kept in memory."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import httpx
import orjson
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter

from config.telemetry import trace_redis
from gateway.settings import GatewaySettings
from protocol import Message, Part, Task, TaskState, TaskStatus, TextPart
from tests.conftest import app_client
from tests.integration.conftest import LaunchGateway
from tests.integration.fake_claude import Stream, fake_claude
from tests.integration.otlp import otlp_collector
from tests.integration.sse import echo_message, rpc_body
from tests.integration.test_worker_crash import start_worker
from tests.waiting import eventually
from workers import WorkerSettings, create_worker
from workers.agents import ClaudeAgent, ClaudeOptions
from workflows.names import RUN_QUICK_TURN

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


class _Switch(SpanProcessor):
    """Passes ended spans on while on: the global provider outlives the test that installs it."""

    def __init__(self, processor: SpanProcessor) -> None:
        self.processor = processor
        self.on = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.on:
            self.processor.on_end(span)


_switch: _Switch | None = None


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans ended during the test, from every tracer in this process (Redis commands included)."""
    global _switch
    if _switch is None:
        provider = TracerProvider()
        _switch = _Switch(SimpleSpanProcessor(InMemorySpanExporter()))
        provider.add_span_processor(_switch)
        trace.set_tracer_provider(provider)
    exporter = _switch.processor.span_exporter  # type: ignore[attr-defined]
    assert isinstance(exporter, InMemorySpanExporter)
    exporter.clear()
    trace_redis(trace.get_tracer_provider())
    _switch.on = True
    try:
        yield exporter
    finally:
        _switch.on = False
        RedisInstrumentor().uninstrument()


@pytest.fixture
async def traced_queue(
    spans: InMemorySpanExporter, temporal_address: str, redis: Redis, redis_url: str
) -> AsyncIterator[str]:
    """A task queue served by a worker whose client carries the TracingInterceptor."""
    queue = f"test-traced-{uuid.uuid4().hex[:8]}"
    client = await Client.connect(
        temporal_address,
        data_converter=pydantic_data_converter,
        interceptors=[TracingInterceptor()],
    )
    settings = WorkerSettings(
        agent="echo",
        task_queue=queue,
        temporal_address=temporal_address,
        redis_url=redis_url,
        shutdown_grace_seconds=1,
    )
    async with create_worker(client, redis, settings):
        yield queue


def _named(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, [span.name for span in spans]
    return found[0]


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        ancestor = by_id[parent.span_id]
        names.append(ancestor.name)
        parent = ancestor.parent
    return names


async def test_message_send_is_one_trace_from_http_to_redis(
    spans: InMemorySpanExporter,
    traced_queue: str,
    gateway_settings: GatewaySettings,
) -> None:
    settings = gateway_settings.model_copy(update={"task_queue": traced_queue})
    body = rpc_body("message/send", {"message": echo_message("trace me")})
    async with app_client(settings) as http:
        response = await http.post(
            "/", json=body, headers={"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"}
        )
    task = response.json()["result"]
    assert task["status"]["state"] == "completed"

    # The instant echo's turn of a blocking send is a quick one (a local activity, traced as any).
    # The reply can reach the client, from the log, before the activity's last index write returns
    # and before Temporal answers the start: their spans end a moment later.
    ending = {f"RunActivity:{RUN_QUICK_TURN}", "StartUpdateWithStartWorkflow:TaskWorkflow"}
    finished = await eventually(
        spans.get_finished_spans,
        10,
        what="the agent activity's and the start's spans to end",
        until=lambda done: ending <= {span.name for span in done},
    )
    ours = [span for span in finished if span.context.trace_id == int(TRACE_ID, 16)]
    by_id = {span.context.span_id: span for span in ours}

    request = _named(ours, "message/send")
    assert request.kind is trace.SpanKind.SERVER
    assert request.parent is not None
    assert request.parent.span_id == int(PARENT_SPAN_ID, 16)
    assert dict(request.attributes or {}) == {
        "rpc.system": "jsonrpc",
        "rpc.method": "message/send",
        "a2a.agent": "echo",
        "a2a.task_id": task["id"],
        "a2a.context_id": task["contextId"],
    }
    start = _named(ours, "StartUpdateWithStartWorkflow:TaskWorkflow")
    assert _ancestors(start, by_id) == ["message/send"]
    workflow = _named(ours, "RunWorkflow:TaskWorkflow")
    assert _ancestors(workflow, by_id) == [
        "StartUpdateWithStartWorkflow:TaskWorkflow",
        "message/send",
    ]
    activity = _named(ours, f"RunActivity:{RUN_QUICK_TURN}")
    assert _ancestors(activity, by_id) == [
        f"StartActivity:{RUN_QUICK_TURN}",
        "StartUpdateWithStartWorkflow:TaskWorkflow",
        "message/send",
    ]
    # The agent's events (created, working, the reply, completed) are one Lua step each, the three
    # status changes one more each (the owner's task index), and the context list one pipeline, all
    # within the activity. (redis-py answers a NOSCRIPT by loading
    # the script and calling again: that first, failed call is not a write.)
    writes = [
        (span.name, (span.attributes or {}).get("db.system"))
        for span in ours
        if span.name in ("EVALSHA", "RPUSH EXPIRE")
        and span.status.status_code is not trace.StatusCode.ERROR
        and _ancestors(span, by_id)[0] == f"RunActivity:{RUN_QUICK_TURN}"
    ]
    assert sorted(writes) == [("EVALSHA", "redis")] * 7 + [("RPUSH EXPIRE", "redis")]
    # Nothing of this task's run went into another trace.
    strays = [
        span.name
        for span in finished
        if span.context.trace_id != int(TRACE_ID, 16)
        and task["id"] in str(dict(span.attributes or {}))
    ]
    assert strays == []


class _Turn:
    """A turn of a one-message task, outside any workflow."""

    def __init__(self, text: str) -> None:
        self.message = Message(
            role="user", parts=[TextPart(text=text)], messageId=str(uuid.uuid4())
        )
        self.task = Task(
            id=str(uuid.uuid4()),
            contextId=str(uuid.uuid4()),
            status=TaskStatus(state=TaskState.WORKING),
            history=[self.message],
        )
        self.chunks: list[str] = []

    async def context(self) -> list[Message]:
        return []

    async def artifact_chunk(
        self, parts: list[Part], *, last: bool, name: str | None = None
    ) -> None:
        self.chunks.extend(part.text for part in parts if isinstance(part, TextPart))

    async def progress(self, parts: list[Part]) -> None:
        pass


async def test_a_model_call_is_a_client_span_with_its_token_counts(
    spans: InMemorySpanExporter,
) -> None:
    async with fake_claude() as api:
        api.expect(Stream(["Hi ", "there"], input_tokens=12, output_tokens=7))
        agent = ClaudeAgent(
            ClaudeOptions(model="claude-test", max_tokens=50, base_url=api.url), "test-key"
        )
        turn = _Turn("hello")
        tracer = trace.get_tracer(__name__)
        with tracer.start_as_current_span("turn") as parent:
            await agent.run(turn)
    assert turn.chunks == ["Hi ", "there"]
    (call,) = [span for span in spans.get_finished_spans() if span.name.startswith("chat ")]
    assert call.name == "chat claude-test"
    assert call.kind is trace.SpanKind.CLIENT
    assert call.parent is not None
    assert call.parent.span_id == parent.get_span_context().span_id
    assert dict(call.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-test",
        "gen_ai.request.max_tokens": 50,
        "gen_ai.response.id": "msg_test",
        "gen_ai.response.model": "claude-test",
        "gen_ai.response.finish_reasons": ("end_turn",),
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 7,
    }


async def test_gateway_and_worker_processes_export_one_trace_over_otlp_and_log_json(
    launch_gateway: LaunchGateway,
    temporal_address: str,
    redis_url: str,
    tmp_path: Path,
    sse_client: httpx.AsyncClient,
) -> None:
    """`a2a-gateway serve` and `a2a-worker` as deployed: OTEL_* variables send their spans to a
    collector, A2A_LOG_FORMAT=json makes their logs JSON lines carrying the trace and task ids."""
    queue = f"test-otlp-{uuid.uuid4().hex[:8]}"
    with otlp_collector() as collector:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "A2A_LOG_FORMAT": "json",
        }
        worker_log = tmp_path / "worker.log"
        worker = start_worker(queue, temporal_address, redis_url, worker_log, env)
        try:
            with launch_gateway(
                "otlp", {**env, "A2A_GATEWAY_TASK_QUEUE": queue, "A2A_GATEWAY_ACCESS_LOG": "true"}
            ) as gateway:
                response = await sse_client.post(
                    gateway.url,
                    json=rpc_body("message/send", {"message": echo_message("over the wire")}),
                    headers={"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"},
                )
                task = response.json()["result"]
                assert task["status"]["state"] == "completed"
                request = await collector.wait_for("message/send", TRACE_ID)
                activity = await collector.wait_for(f"RunActivity:{RUN_QUICK_TURN}", TRACE_ID)
                gateway_lines = [orjson.loads(line) for line in gateway.output().splitlines()]
        finally:
            worker.stop()
        worker_lines = [orjson.loads(line) for line in worker_log.read_text().splitlines()]

    assert (request.service, request.parent_span_id) == ("a2a-gateway", PARENT_SPAN_ID)
    assert request.attributes["a2a.task_id"] == task["id"]
    assert activity.service == "a2a-worker"
    # The four events of the turn, each one Lua step, and the three status changes' index updates
    # (a NOSCRIPT answer, retried, is not a write).
    writes = [
        span.service
        for span in collector.spans
        if span.name == "EVALSHA" and span.parent_span_id == activity.span_id and not span.failed
    ]
    assert writes == ["a2a-worker"] * 7
    (access,) = [line for line in gateway_lines if '"POST / HTTP/1.1" 200' in line["message"]]
    assert access["logger"] == "uvicorn.access"
    assert (access["trace_id"], access["span_id"]) == (TRACE_ID, request.span_id)
    assert access["task_id"] == task["id"]
    assert {"time", "level", "logger", "message"} <= set(worker_lines[0])
    assert any(line["message"].startswith("worker for agent 'echo'") for line in worker_lines)
