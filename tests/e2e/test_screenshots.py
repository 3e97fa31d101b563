"""The console's main views as PNG files (docs/console.md shows them): a reply streaming slowly with the
options panel, the task list filtered and paged, a finished conversation, the "no such task" view. Each
view is checked before it is taken. `python -m tests.e2e.screenshots` writes them to docs/images/; run
with the other browser tests, they go to .a2a/test-artifacts/screenshots/."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from playwright.async_api import Page, expect

from tests.e2e.conftest import ConsoleGateway
from tests.e2e.console_page import api_send, send, tasks_get, wait_for_reply_length
from tests.e2e.screenshots import screenshots_dir

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STREAMED = (
    "Streaming slowly: twenty pieces, half a second apart, so the reply visibly grows while "
    "Cancel is still there to stop it."
)


async def take(page: Page, name: str, *, full_page: bool = False) -> Path:
    path = screenshots_dir() / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=path, full_page=full_page, animations="disabled", caret="hide")
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    return path


async def test_screenshots_of_the_main_views(
    page: Page, console_gateway: ConsoleGateway, gateway_http: httpx.AsyncClient
) -> None:
    url = f"{console_gateway.url}/ui/"

    # Tasks of one context, in each state, sent through the API.
    context_id = str(uuid.uuid4())
    waiting = []
    for agent, text, metadata in [
        ("quick", "Summarize the release notes", None),
        ("ask", "Which city should we pick for the offsite?", None),
        ("quick", "Translate this paragraph into French", {"echo": {"failOnTurn": 1}}),
        ("ask", "Draft the quarterly report", None),
        ("quick", "Check the build for flaky tests", None),
        ("ask", "Plan the team dinner", None),
    ]:
        task = await api_send(
            gateway_http, console_gateway, agent, text, context_id=context_id, metadata=metadata
        )
        if task["status"]["state"] == "input-required":
            waiting.append(task["id"])
    await cancel(gateway_http, console_gateway, waiting.pop(1))

    # 1. A reply streaming slowly, the options panel beside the message box.
    await page.goto(url)
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    await page.get_by_role("button", name="Stream slowly", exact=True).click()
    await send(page, "quick", STREAMED)
    await page.get_by_label("Message").fill("Next: a reply, once this one has ended.")
    await wait_for_reply_length(page, len(STREAMED) // 3)
    await expect(page.get_by_test_id("task-state")).to_have_attribute("data-state", "working")
    await expect(page.get_by_test_id("stream-status")).to_have_attribute("data-status", "live")
    await expect(page.get_by_test_id("cancel")).to_be_enabled()
    await take(page, "console-streaming", full_page=True)
    await page.get_by_test_id("cancel").click()
    await expect(page.get_by_test_id("task-state")).to_have_attribute("data-state", "canceled")

    # 2. The task list, filtered by context, five to a page.
    await page.goto(f"{console_gateway.url}/ui/?pageSize=5")
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    await page.get_by_label("Context", exact=True).fill(context_id)
    await page.get_by_label("Context", exact=True).press("Enter")
    await expect(page.get_by_test_id("task-list-summary")).to_have_text("Showing 5 of 6 tasks")
    await expect(page.get_by_test_id("task-list-more")).to_be_visible()
    await take_element(page, "task-list-panel", "task-list")

    # 3. A finished conversation: asked for input, answered, completed.
    await page.goto(url)
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    await page.get_by_role("button", name="Ask for input", exact=True).click()
    task_id = await send(page, "quick", "Book a table for two, please.")
    await expect(page.get_by_test_id("task-state")).to_have_attribute(
        "data-state", "input-required"
    )
    await page.get_by_role("button", name="Instant", exact=True).click()
    await page.get_by_label("Message").fill("Friday at eight, by the window.")
    await page.get_by_test_id("send").click()
    await expect(page.get_by_test_id("task-state")).to_have_attribute("data-state", "completed")
    await expect(page.get_by_test_id("turn")).to_have_count(2)
    assert (await tasks_get(gateway_http, console_gateway, task_id))["status"]["state"] == (
        "completed"
    )
    # Opened again by its address, drawn from tasks/get, then from its event log.
    await page.reload()
    await expect(page.get_by_test_id("stream-status")).to_have_text("Stream ended")
    await expect(page.get_by_test_id("artifact-text")).to_have_text(
        ["Book a table for two, please.", "Friday at eight, by the window."]
    )
    await take(page, "console-finished-task", full_page=True)

    # 4. An address that names no task.
    await page.goto(f"{url}#task={uuid.uuid4()}")
    await expect(page.get_by_test_id("task-not-found")).to_be_visible()
    await take(page, "console-no-such-task", full_page=True)

    for task_id in waiting:
        await cancel(gateway_http, console_gateway, task_id)


async def cancel(http: httpx.AsyncClient, gateway: ConsoleGateway, task_id: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tasks/cancel", "params": {"id": task_id}}
    answer = (await http.post(gateway.url, json=body)).json()
    assert answer["result"]["status"]["state"] == "canceled", answer


async def take_element(page: Page, testid: str, name: str) -> Path:
    path = screenshots_dir() / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.get_by_test_id(testid).screenshot(path=path, animations="disabled")
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    return path
