"""What the browser tests share: opening the console, sending from it, watching its reply grow, the
gateway's own answers (JSON-RPC over HTTP, the task's event log in Redis), and a gateway scripted in the
page (`page.route`) for what the real agents never do."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from playwright.async_api import Page, Request, Route, expect
from redis.asyncio import Redis

from tests.a2a_schema import assert_valid_response
from tests.e2e.conftest import ConsoleGateway
from tests.integration import eventlog

TASK_ID = re.compile(r"^[0-9a-f-]{36}$")


# Records, in the page, every distinct text of the first artifact, and every stream status with the reply's
# length at that moment, as they happen (a MutationObserver runs after each EventSource event's task, so
# each chunk is one step).
WATCH = """() => {
    window.replySteps = [];
    window.streamStatuses = [];
    const record = () => {
        const text = document.querySelector('[data-testid="artifact-text"]')?.textContent ?? "";
        if (text && window.replySteps.at(-1) !== text) window.replySteps.push(text);
    };
    new MutationObserver(record).observe(document.getElementById("timeline"),
        {subtree: true, childList: true, characterData: true});
    const stream = document.getElementById("stream-status");
    new MutationObserver(() => window.streamStatuses.push(
        [stream.dataset.status, window.replySteps.at(-1)?.length ?? 0]
    )).observe(stream, {attributes: true, attributeFilter: ["data-status"]});
}"""


async def open_console(page: Page, gateway: ConsoleGateway) -> None:
    await page.goto(f"{gateway.url}/ui")
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    await page.evaluate(WATCH)


async def send(page: Page, agent: str, text: str) -> str:
    """Picks `agent`, types `text`, sends it; the id of the task the page then shows."""
    await page.get_by_label("Agent").select_option(agent)
    await page.get_by_label("Message").fill(text)
    await page.get_by_test_id("send").click()
    task_id = page.get_by_test_id("task-id")
    await expect(task_id).to_have_text(TASK_ID)
    return await task_id.inner_text()


async def reply_text(page: Page) -> str:
    return await page.get_by_test_id("artifact-text").first.inner_text()


async def reply_steps(page: Page) -> list[str]:
    steps: list[str] = await page.evaluate("window.replySteps")
    return steps


async def wait_for_reply_length(page: Page, at_least: int) -> None:
    await page.wait_for_function(
        """(n) => (document.querySelector('[data-testid="artifact-text"]')?.textContent.length ?? 0) >= n""",
        arg=at_least,
    )


async def tasks_get(http: httpx.AsyncClient, gateway: ConsoleGateway, task_id: str) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": task_id}}
    response = await http.post(gateway.url, json=body)
    assert response.status_code == 200
    answer = response.json()
    assert_valid_response(answer, "tasks/get")
    return answer["result"]


async def streamed_text(redis: Redis, task_id: str) -> str:
    """The text the task's log streamed, by A2A's rule: `append:false` starts the artifact again."""
    text = ""
    for event in await eventlog.events(redis, task_id):
        if event["type"] == "task.progress":
            piece = "".join(part.get("text", "") for part in event["artifact"]["parts"])
            text = text + piece if event["append"] else piece
    return text


def rpc_method(request: Request) -> str | None:
    """The JSON-RPC method a POST to an agent's endpoint calls."""
    if request.method != "POST" or "/agents/" not in request.url:
        return None
    body = request.post_data_json
    return body.get("method") if isinstance(body, dict) else None


def is_send(agent: str) -> Callable[[Request], bool]:
    """Matches the page's `message/send` to `agent` (not the task list's `ListTasks` to it)."""
    return lambda request: (
        urlsplit(request.url).path == f"/agents/{agent}" and rpc_method(request) == "message/send"
    )


def is_task_call(request: Request) -> bool:
    method = rpc_method(request)
    return method is not None and method != "ListTasks"


def sse_body(events: list[dict[str, Any]]) -> str:
    return "".join(f"id: {n}-0\ndata: {json.dumps(event)}\n\n" for n, event in enumerate(events, 1))


def scripted_task(task_id: str, state: str, **fields: Any) -> dict[str, Any]:
    message = {
        "kind": "message",
        "role": "user",
        "messageId": "m1",
        "parts": [{"kind": "text", "text": "What is 2 + 3?"}],
    }
    return {
        "kind": "task",
        "id": task_id,
        "contextId": "c1",
        "status": {"state": state},
        "history": [message],
        **fields,
    }


def reply(text: str) -> dict[str, Any]:
    return {"artifactId": "a1", "name": "reply", "parts": [{"kind": "text", "text": text}]}


def request_id(route: Route) -> Any:
    body = route.request.post_data_json
    assert body is not None
    return body["id"]


async def script_gateway(page: Page, task_id: str, events: list[dict[str, Any]]) -> None:
    """`message/send` to the `quick` agent answers `task_id`, whose event stream is `events`; the rest of
    the page (files, config) comes from the real gateway."""

    async def answer_send(route: Route) -> None:
        result = scripted_task(task_id, "submitted")
        await route.fulfill(json={"jsonrpc": "2.0", "id": request_id(route), "result": result})

    async def answer_events(route: Route) -> None:
        await route.fulfill(
            status=200,
            headers={"content-type": "text/event-stream", "cache-control": "no-cache"},
            body=sse_body(events),
        )

    await page.route("**/agents/quick", answer_send)
    await page.route(f"**/tasks/{task_id}/events*", answer_events)


async def api_send(
    http: httpx.AsyncClient,
    gateway: ConsoleGateway,
    agent: str,
    text: str,
    *,
    task_id: str | None = None,
    context_id: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A blocking `message/send` through the API (not the page): the task once the turn has ended."""
    message: dict[str, Any] = {
        "kind": "message",
        "role": "user",
        "messageId": uuid.uuid4().hex,
        "parts": [{"kind": "text", "text": text}],
    }
    if task_id is not None:
        message["taskId"] = task_id
    if context_id is not None:
        message["contextId"] = context_id
    if metadata is not None:
        message["metadata"] = metadata
    body = {
        "jsonrpc": "2.0",
        "id": uuid.uuid4().hex,
        "method": "message/send",
        "params": {"message": message, "configuration": {"blocking": True}},
    }
    response = await http.post(f"{gateway.url}/agents/{agent}", json=body, timeout=30)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert_valid_response(answer, "message/send")
    task: dict[str, Any] = answer["result"]
    assert task["kind"] == "task"
    return task


def text_of(message: dict[str, Any]) -> str:
    return "".join(part.get("text", "") for part in message["parts"])


# What the task panel shows, in document order: each message (its text, without "You" or "Agent"), state
# line, and artifact (its text) as [testid, text or state].
ENTRIES = """panel => [...panel.querySelectorAll(
    '[data-testid="user-message"], [data-testid="agent-message"], [data-testid="state-change"],'
    + ' [data-testid="artifact-text"]')].map(node => [
        node.dataset.testid,
        node.dataset.state ?? [...node.childNodes].filter(child => child.nodeType === Node.TEXT_NODE)
            .map(child => child.textContent).join(""),
    ])"""


async def shown_entries(page: Page, testid: str = "timeline") -> list[tuple[str, str]]:
    """The messages, state lines and artifacts under `testid`, in the order the page shows them."""
    entries: list[list[str]] = await page.get_by_test_id(testid).evaluate(ENTRIES)
    return [(kind, text) for kind, text in entries]
