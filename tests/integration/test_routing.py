"""Several agents behind one gateway: each on its own task queue and worker, with its own card and
endpoint; `POST /` and the root card are the default agent's."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum

from tests.a2a_schema import assert_valid, assert_valid_response
from tests.integration.conftest import AgentWorker, LaunchGateway
from tests.integration.sse import GatewayProcess, echo_message, read_events, rpc_body
from workflows.names import AGENT_ATTRIBUTE


@pytest.fixture(scope="module")
def shout_queue() -> str:
    return f"test-shout-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def agents_file(
    tmp_path_factory: pytest.TempPathFactory, task_queue: str, shout_queue: str
) -> Path:
    path = tmp_path_factory.mktemp("agents") / "agents.toml"
    path.write_text(
        f"""
[agents.echo]
kind = "echo"
task_queue = "{task_queue}"

[agents.shout]
kind = "echo"
task_queue = "{shout_queue}"
name = "Shout Agent"
description = "Echoes in two pieces."
version = "2.0.0"
options = {{ chunks = 2 }}

[[agents.shout.skills]]
id = "shout"
name = "Shout"
description = "Says it back."
tags = ["echo"]
"""
    )
    return path


@pytest.fixture(scope="module")
async def shout_worker(agent_worker: AgentWorker, agents_file: Path) -> AsyncIterator[None]:
    async with agent_worker(agents_file, "shout"):
        yield


@pytest.fixture(scope="module")
def routing_gateway(
    launch_gateway: LaunchGateway, agents_file: Path, shout_worker: None
) -> Iterator[GatewayProcess]:
    with launch_gateway("routing", {"A2A_CONFIG": str(agents_file)}) as gateway:
        yield gateway


async def send(client: httpx.AsyncClient, url: str, message: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(url, json=rpc_body("message/send", {"message": message}))
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert_valid_response(body, "message/send")
    result: dict[str, Any] = body["result"]
    return result


async def test_each_agent_has_its_own_card_and_the_root_card_is_the_default(
    routing_gateway: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    base = routing_gateway.url
    shout = (await sse_client.get(f"{base}/agents/shout/.well-known/agent.json")).json()
    echo = (await sse_client.get(f"{base}/agents/echo/.well-known/agent.json")).json()
    root = (await sse_client.get(f"{base}/.well-known/agent.json")).json()
    for card in (shout, echo, root):
        assert_valid(card, "AgentCard")
    assert (shout["name"], shout["version"], shout["url"]) == (
        "Shout Agent",
        "2.0.0",
        f"{base}/agents/shout",
    )
    assert shout["skills"] == [
        {"id": "shout", "name": "Shout", "description": "Says it back.", "tags": ["echo"]}
    ]
    assert (echo["name"], echo["url"], echo["skills"][0]["id"]) == (
        "echo",
        f"{base}/agents/echo",
        "echo",
    )
    assert root == {**echo, "url": f"{base}/"}


async def test_tasks_run_on_their_agents_queue(
    routing_gateway: GatewayProcess,
    sse_client: httpx.AsyncClient,
    temporal_client: Client,
    task_queue: str,
    shout_queue: str,
) -> None:
    shouted = await send(sse_client, f"{routing_gateway.url}/agents/shout", echo_message("hey you"))
    echoed = await send(sse_client, f"{routing_gateway.url}/", echo_message("hey you"))
    assert [a["parts"] for a in shouted["artifacts"]] == [
        [{"kind": "text", "text": "hey "}, {"kind": "text", "text": "you"}]
    ]
    assert [a["parts"] for a in echoed["artifacts"]] == [[{"kind": "text", "text": "hey you"}]]
    for task, queue, agent in ((shouted, shout_queue, "shout"), (echoed, task_queue, "echo")):
        description = await temporal_client.get_workflow_handle(task["id"]).describe()
        assert description.task_queue == queue
        assert description.typed_search_attributes.get(AGENT_ATTRIBUTE) == agent


async def test_streaming_through_a_named_agent(
    routing_gateway: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    frames = await read_events(
        sse_client,
        "POST",
        f"{routing_gateway.url}/agents/shout",
        json=rpc_body("message/stream", {"message": echo_message("ab")}),
    )
    kinds = [frame.data["result"]["kind"] for frame in frames]
    assert kinds == ["task", "status-update", "artifact-update", "artifact-update", "status-update"]


async def test_unknown_agent_is_404_with_a_json_rpc_error(
    routing_gateway: GatewayProcess, sse_client: httpx.AsyncClient
) -> None:
    expected = {
        "jsonrpc": "2.0",
        "id": None,
        "error": {
            "code": -32601,
            "message": "No agent named 'nope' at this gateway; its agents: echo, shout",
        },
    }
    card = await sse_client.get(f"{routing_gateway.url}/agents/nope/.well-known/agent.json")
    call = await sse_client.post(
        f"{routing_gateway.url}/agents/nope", json=rpc_body("tasks/get", {"id": "t"})
    )
    for response in (card, call):
        assert response.status_code == 404
        assert response.json() == expected


async def test_the_worker_polls_its_task_queue_four_times_for_each_sticky_poll(
    agent_worker: AgentWorker, agents_file: Path
) -> None:
    queue = f"test-polls-{uuid.uuid4().hex[:8]}"
    worker = agent_worker(agents_file, "shout", task_queue=queue, workflow_task_polls=15)
    async with worker:
        config = worker.config()
    assert config.get("workflow_task_poller_behavior") == PollerBehaviorSimpleMaximum(15)
    assert config.get("nonsticky_to_sticky_poll_ratio") == 0.8
