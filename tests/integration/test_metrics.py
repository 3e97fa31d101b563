"""`GET /metrics` after a known sequence of requests and streams: every count exact."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gateway.settings import GatewaySettings
from tests.conftest import app_client
from tests.integration.sse import echo_message, rpc_body
from tests.waiting import eventually

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def picked(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: value for (sample, labels), value in samples.items() if sample == name}


async def until_streams_open(http: httpx.AsyncClient, view: str, count: int) -> None:
    async def open_streams() -> dict[tuple[tuple[str, str], ...], float]:
        return picked(await scrape(http), "a2a_active_streams")

    await eventually(
        open_streams,
        10,
        what=f"{count} open {view} stream(s)",
        until=lambda streams: streams.get((("view", view),)) == count,
        interval=0.02,
    )


async def test_metrics_count_requests_streams_and_events_exactly(
    gateway_settings: GatewaySettings, echo_worker: None
) -> None:
    async with app_client(gateway_settings) as http:
        first = await http.post(
            "/",
            json=rpc_body(
                "message/send", {"message": echo_message("one", finalState="input-required")}
            ),
        )
        task_id = first.json()["result"]["id"]
        # The browser stream replays the first turn from the log (4 events), then waits: the follow-up's
        # 4 events (working, 2 chunks, completed) reach it live.
        browser = asyncio.create_task(http.get(f"/tasks/{task_id}/events"))
        await until_streams_open(http, "browser", 1)
        follow_up = {**echo_message("two", chunks=2), "taskId": task_id}
        await http.post("/", json=rpc_body("message/send", {"message": follow_up}))
        frames = (await browser).text.count("\ndata: ")
        await http.post("/", json=rpc_body("tasks/get", {"id": str(uuid.uuid4())}))
        await http.post("/", json=rpc_body("tasks/get", {"id": task_id}))
        await http.post("/", content=b"{not json")
        await http.post("/", json=rpc_body("tasks/frobnicate", {}))
        streamed = await http.post(
            "/", json=rpc_body("message/stream", {"message": echo_message("three")})
        )
        stream_frames = streamed.text.count("data: ")
        samples = await scrape(http)

    assert (frames, stream_frames) == (8, 4)
    requests = {
        (("code", "ok"), ("method", "message/send")): 2.0,
        (("code", "ok"), ("method", "tasks/get")): 1.0,
        (("code", "-32001"), ("method", "tasks/get")): 1.0,
        (("code", "-32700"), ("method", "other")): 1.0,
        (("code", "-32601"), ("method", "other")): 1.0,
        (("code", "ok"), ("method", "message/stream")): 1.0,
    }
    assert picked(samples, "a2a_requests_total") == requests
    assert picked(samples, "a2a_request_duration_seconds_count") == requests
    assert picked(samples, "a2a_active_streams") == {
        (("view", "browser"),): 0.0,
        (("view", "a2a"),): 0.0,
    }
    assert picked(samples, "a2a_events_delivered_total") == {
        (("view", "browser"),): 8.0,
        (("view", "a2a"),): 4.0,
    }
    assert picked(samples, "a2a_stream_duration_seconds_count") == {
        (("view", "browser"),): 1.0,
        (("view", "a2a"),): 1.0,
    }
    lag = picked(samples, "a2a_fanout_lag_seconds_count")
    # Exactly the follow-up's events reached the browser live; how many of the new task's events
    # were in the log before its stream's first read depends on timing.
    assert lag[(("view", "browser"),)] == 4.0
    assert set(lag) <= {(("view", "browser"),), (("view", "a2a"),)}
    assert lag.get((("view", "a2a"),), 0.0) <= 4.0
    assert picked(samples, "a2a_first_token_seconds_count") == {(): 1.0}
    assert picked(samples, "a2a_slow_consumer_disconnects_total") == {}


async def test_metrics_can_be_turned_off(
    gateway_settings: GatewaySettings, echo_worker: None
) -> None:
    settings = gateway_settings.model_copy(update={"metrics": False})
    async with app_client(settings) as http:
        response = await http.get("/metrics")
    assert response.status_code == 404
