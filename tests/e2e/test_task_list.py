"""The console's task list in Debian's Chromium, fed by the gateway (A2A 1.0 `ListTasks` over JSON-RPC):
tasks sent through the API, not the page, listed newest first with their states; the state and context
filters; paging with "More"; a task opened from the list; the gateway's errors shown in the list's area.

Each test files its tasks under a context of its own and filters the list by it: the gateway is shared
with the other browser tests (and, without auth, lists every task)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
from playwright.async_api import Page, Request, expect

from tests.a2a_v1_schema import assert_valid_v1
from tests.e2e.conftest import ConsoleGateway
from tests.waiting import eventually

V1_HEADERS = {"A2A-Version": "1.0"}
STATES_V1 = {
    "completed": "TASK_STATE_COMPLETED",
    "input-required": "TASK_STATE_INPUT_REQUIRED",
    "canceled": "TASK_STATE_CANCELED",
}


async def rpc(
    http: httpx.AsyncClient,
    gateway: ConsoleGateway,
    method: str,
    params: dict[str, Any],
    *,
    agent: str = "quick",
    headers: dict[str, str] | None = None,
) -> Any:
    body = {"jsonrpc": "2.0", "id": uuid.uuid4().hex, "method": method, "params": params}
    response = await http.post(
        f"{gateway.url}/agents/{agent}", json=body, headers=headers or {}, timeout=30
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert "result" in answer, answer
    return answer["result"]


async def send_api(
    http: httpx.AsyncClient, gateway: ConsoleGateway, agent: str, text: str, context_id: str
) -> dict[str, Any]:
    """`message/send` (A2A 0.2.5, blocking: the answer comes when the turn has ended) of a new task."""
    message = {
        "kind": "message",
        "role": "user",
        "messageId": uuid.uuid4().hex,
        "contextId": context_id,
        "parts": [{"kind": "text", "text": text}],
    }
    params = {"message": message, "configuration": {"blocking": True}}
    task: dict[str, Any] = await rpc(http, gateway, "message/send", params, agent=agent)
    assert task["kind"] == "task"
    return task


async def cancel_api(http: httpx.AsyncClient, gateway: ConsoleGateway, task_id: str) -> None:
    task = await rpc(http, gateway, "tasks/cancel", {"id": task_id})
    assert task["status"]["state"] == "canceled"


async def listed(
    http: httpx.AsyncClient, gateway: ConsoleGateway, context_id: str
) -> list[tuple[str, str]]:
    """The context's tasks as ListTasks answers: (id, 1.0 state), newest first."""
    result = await rpc(
        http, gateway, "ListTasks", {"contextId": context_id, "pageSize": 100}, headers=V1_HEADERS
    )
    assert_valid_v1(result, "ListTasksResponse")
    return [(task["id"], task["status"]["state"]) for task in result["tasks"]]


async def until_listed(
    http: httpx.AsyncClient,
    gateway: ConsoleGateway,
    context_id: str,
    expected: list[tuple[str, str]],
) -> None:
    """Waits for the workers' task index to list `expected` (id, 0.2.5 state), newest first."""
    wanted = [(task_id, STATES_V1[state]) for task_id, state in expected]
    await eventually(
        lambda: listed(http, gateway, context_id),
        10,
        what=f"ListTasks to answer {wanted}",
        until=lambda tasks: tasks == wanted,
    )


def list_call(request: Request) -> dict[str, Any] | None:
    """The params of a ListTasks call the page made, else None."""
    if request.method != "POST" or not urlsplit(request.url).path.startswith("/agents/"):
        return None
    body = request.post_data_json
    if not isinstance(body, dict) or body.get("method") != "ListTasks":
        return None
    params: dict[str, Any] = body["params"]
    return params


async def open_list(page: Page, gateway: ConsoleGateway, query: str = "") -> None:
    await page.goto(f"{gateway.url}/ui/{query}")
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")


async def filter_context(page: Page, context_id: str) -> dict[str, Any]:
    """Types `context_id` in the context filter and presses Enter; the ListTasks params sent for it."""
    field = page.get_by_label("Context", exact=True)
    await field.fill(context_id)
    async with page.expect_request(
        lambda r: (list_call(r) or {}).get("contextId") == context_id
    ) as call:
        await field.press("Enter")
    params = list_call(await call.value)
    assert params is not None
    return params


def items(page: Page) -> Any:
    return page.get_by_test_id("task-list-item")


async def test_task_list_shows_api_tasks_newest_first_and_filters_by_state(
    page: Page, console_gateway: ConsoleGateway, gateway_http: httpx.AsyncClient
) -> None:
    context_id = str(uuid.uuid4())
    done = await send_api(
        gateway_http, console_gateway, "quick", "first, to completion", context_id
    )
    asking = await send_api(
        gateway_http, console_gateway, "ask", "second, left waiting", context_id
    )
    gone = await send_api(gateway_http, console_gateway, "ask", "third, then canceled", context_id)
    await cancel_api(gateway_http, console_gateway, gone["id"])
    assert done["status"]["state"] == "completed"
    assert asking["status"]["state"] == "input-required"
    expected = [
        (gone["id"], "canceled"),
        (asking["id"], "input-required"),
        (done["id"], "completed"),
    ]
    await until_listed(gateway_http, console_gateway, context_id, expected)

    # The page's first load: an A2A 1.0 ListTasks, newest first.
    async with page.expect_request(lambda r: list_call(r) is not None) as first:
        await open_list(page, console_gateway)
    request = await first.value
    assert (await request.all_headers()).get("a2a-version") == "1.0"
    assert (request.post_data_json or {}).get("jsonrpc") == "2.0"
    assert list_call(request) == {"pageSize": 20}

    assert await filter_context(page, context_id) == {"pageSize": 20, "contextId": context_id}
    await expect(items(page)).to_have_count(3)
    shown = [await item.get_attribute("data-task-id") for item in await items(page).all()]
    assert shown == [task_id for task_id, _ in expected]
    await expect(page.get_by_test_id("task-list-state")).to_have_text(
        [state for _, state in expected]
    )
    await expect(page.get_by_test_id("task-list-title")).to_have_text(
        ["third, then canceled", "second, left waiting", "first, to completion"]
    )
    first_item = items(page).first
    await expect(first_item.get_by_test_id("task-list-id").locator("code")).to_have_text(
        gone["id"][:8]
    )
    await expect(first_item.get_by_test_id("task-list-id")).to_have_attribute(
        "title", f"Task {gone['id']}"
    )
    await expect(first_item.get_by_test_id("task-list-context")).to_have_attribute(
        "title", f"Context {context_id}"
    )
    await expect(first_item.get_by_test_id("task-list-context").locator("code")).to_have_text(
        context_id[:8]
    )
    times = await page.get_by_test_id("task-list-time").evaluate_all(
        "times => times.map(time => Date.parse(time.dateTime))"
    )
    assert len(times) == 3
    assert times == sorted(times, reverse=True), times
    await expect(page.get_by_test_id("task-list-summary")).to_have_text("Showing 3 of 3 tasks")
    await expect(page.get_by_test_id("task-list-more")).to_be_hidden()
    await expect(page.get_by_test_id("task-list-error")).to_be_hidden()

    # The state filter narrows the list on the gateway (its 1.0 name goes in `status`).
    state = page.get_by_label("State", exact=True)
    async with page.expect_request(
        lambda r: (list_call(r) or {}).get("status") == "TASK_STATE_INPUT_REQUIRED"
    ) as narrowed:
        await state.select_option(label="input-required")
    assert list_call(await narrowed.value) == {
        "pageSize": 20,
        "contextId": context_id,
        "status": "TASK_STATE_INPUT_REQUIRED",
    }
    await expect(items(page)).to_have_count(1)
    await expect(items(page)).to_have_attribute("data-task-id", asking["id"])
    await expect(page.get_by_test_id("task-list-state")).to_have_text("input-required")

    await state.select_option(label="completed")
    await expect(items(page)).to_have_count(1)
    await expect(items(page)).to_have_attribute("data-task-id", done["id"])

    await state.select_option(label="failed")
    await expect(items(page)).to_have_count(0)
    await expect(page.get_by_test_id("task-list-empty")).to_have_text(
        "No tasks match these filters."
    )

    await state.select_option(label="Any state")
    await expect(items(page)).to_have_count(3)

    await cancel_api(gateway_http, console_gateway, asking["id"])


async def test_task_list_pages_with_more(
    page: Page, console_gateway: ConsoleGateway, gateway_http: httpx.AsyncClient
) -> None:
    context_id = str(uuid.uuid4())
    sent = [
        await send_api(gateway_http, console_gateway, "ask", f"page test {n}", context_id)
        for n in range(5)
    ]
    newest_first = [task["id"] for task in reversed(sent)]
    try:
        await until_listed(
            gateway_http,
            console_gateway,
            context_id,
            [(task_id, "input-required") for task_id in newest_first],
        )
        # `?pageSize=` of the page's address sets the page size asked of the gateway.
        await open_list(page, console_gateway, "?pageSize=2")
        assert await filter_context(page, context_id) == {"pageSize": 2, "contextId": context_id}
        more = page.get_by_test_id("task-list-more")
        summary = page.get_by_test_id("task-list-summary")

        await expect(items(page)).to_have_count(2)
        await expect(summary).to_have_text("Showing 2 of 5 tasks")
        await expect(more).to_be_visible()
        token: str | None = None
        for count in (4, 5):
            async with page.expect_request(
                lambda r: "pageToken" in (list_call(r) or {})
            ) as next_page:
                await more.click()
            params = list_call(await next_page.value)
            assert params is not None
            assert params["contextId"] == context_id
            assert params["pageSize"] == 2
            assert params["pageToken"]
            assert params["pageToken"] != token
            token = params["pageToken"]
            await expect(items(page)).to_have_count(count)
            await expect(summary).to_have_text(f"Showing {count} of 5 tasks")
        await expect(more).to_be_hidden()
        shown = [await item.get_attribute("data-task-id") for item in await items(page).all()]
        assert shown == newest_first
    finally:
        for task in sent:
            await cancel_api(gateway_http, console_gateway, task["id"])


async def test_task_list_opens_a_task_by_its_address(
    page: Page, console_gateway: ConsoleGateway, gateway_http: httpx.AsyncClient
) -> None:
    context_id = str(uuid.uuid4())
    text = "Opened from the list, replayed from its log"
    done = await send_api(gateway_http, console_gateway, "quick", text, context_id)
    asking = await send_api(gateway_http, console_gateway, "ask", "still waiting", context_id)
    await until_listed(
        gateway_http,
        console_gateway,
        context_id,
        [(asking["id"], "input-required"), (done["id"], "completed")],
    )
    await open_list(page, console_gateway)
    await filter_context(page, context_id)
    await expect(items(page)).to_have_count(2)
    await expect(page.get_by_test_id("task")).to_be_hidden()

    done_item = page.locator(f'[data-testid="task-list-item"][data-task-id="{done["id"]}"]')
    await done_item.get_by_role("button", name=text).click()
    await expect(page).to_have_url(f"{console_gateway.url}/ui/#task={done['id']}")
    await expect(page.get_by_test_id("task-id")).to_have_text(done["id"])
    await expect(page.get_by_test_id("task-state")).to_have_attribute("data-state", "completed")
    await expect(page.get_by_test_id("artifact-text")).to_have_text(text)
    await expect(page.get_by_test_id("user-message")).to_contain_text(text)
    await expect(done_item).to_have_attribute("aria-current", "true")

    # A task still waiting streams, and the composer continues it.
    asking_item = page.locator(f'[data-testid="task-list-item"][data-task-id="{asking["id"]}"]')
    await asking_item.get_by_test_id("task-list-open").click()
    await expect(page.get_by_test_id("task-id")).to_have_text(asking["id"])
    await expect(page.get_by_test_id("task-state")).to_have_attribute(
        "data-state", "input-required"
    )
    await expect(page.get_by_test_id("send")).to_have_text("Reply")
    await expect(asking_item).to_have_attribute("aria-current", "true")
    await expect(done_item).not_to_have_attribute("aria-current", "true")

    # Back returns to the task opened before, by its address.
    await page.go_back()
    await expect(page.get_by_test_id("task-id")).to_have_text(done["id"])
    await expect(page.get_by_test_id("task-state")).to_have_attribute("data-state", "completed")

    # Cancelled from the page: the list shows the end once the stream has it.
    await asking_item.get_by_test_id("task-list-open").click()
    await expect(page.get_by_test_id("send")).to_have_text("Reply")
    await page.get_by_test_id("cancel").click()
    await expect(page.get_by_test_id("task-state")).to_have_attribute("data-state", "canceled")
    await expect(asking_item.get_by_test_id("task-list-state")).to_have_text("canceled")
    await until_listed(
        gateway_http,
        console_gateway,
        context_id,
        [(asking["id"], "canceled"), (done["id"], "completed")],
    )


async def test_task_list_refreshes_after_a_send_from_the_page(
    page: Page, console_gateway: ConsoleGateway, gateway_http: httpx.AsyncClient
) -> None:
    await open_list(page, console_gateway)
    await expect(page.get_by_test_id("task-list-error")).to_be_hidden()
    # Sent elsewhere while the page is open: it appears with the page's next send.
    other = await send_api(
        gateway_http, console_gateway, "quick", "sent by another client", str(uuid.uuid4())
    )
    await page.get_by_label("Agent").select_option("quick")
    await page.get_by_label("Message").fill("sent from the page")
    await page.get_by_test_id("send").click()
    await expect(page.get_by_test_id("task-state")).to_have_attribute("data-state", "completed")
    mine = await page.get_by_test_id("task-id").inner_text()

    top = items(page)
    await expect(top.nth(0)).to_have_attribute("data-task-id", mine)
    await expect(top.nth(0).get_by_test_id("task-list-state")).to_have_text("completed")
    await expect(top.nth(0)).to_have_attribute("aria-current", "true")
    await expect(top.nth(1)).to_have_attribute("data-task-id", other["id"])


async def test_task_list_shows_the_gateways_error_in_its_area(
    page: Page, console_gateway: ConsoleGateway
) -> None:
    # The gateway takes 1 to 100 tasks a page: -32602, shown where the list would be.
    await open_list(page, console_gateway, "?pageSize=1000")
    error = page.get_by_test_id("task-list-error")
    await expect(error).to_contain_text("The task list could not be loaded")
    await expect(error).to_contain_text("(JSON-RPC error -32602)")
    await expect(error).to_have_attribute("role", "alert")
    await expect(items(page)).to_have_count(0)
    await expect(page.get_by_test_id("task-list-empty")).to_be_hidden()
    await expect(page.get_by_test_id("task-list-more")).to_be_hidden()
    # The composer's own error area stays clear.
    await expect(page.get_by_test_id("error")).to_be_hidden()
