"""A task opened by its address (`#task=<id>`) in Debian's Chromium: drawn from `tasks/get` in the order of
its history when its event log is gone (the messages interleaved as they came, the final state and its
message, its artifacts), continued live from there; and an address naming no task, which shows one clear
message and no task panel."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, Request, expect
from redis.asyncio import Redis

from protocol import task_events_key
from tests.a2a_schema import assert_valid_response
from tests.e2e.conftest import ConsoleGateway
from tests.e2e.console_page import (
    api_send,
    open_console,
    send,
    shown_entries,
    tasks_get,
    text_of,
)


def question(text: str) -> str:
    """The echo agent's question when a turn ends input-required."""
    return f"Echoed {len(text)} characters. Send another message to continue."


async def open_address(page: Page, gateway: ConsoleGateway, task_id: str) -> None:
    await page.goto(f"{gateway.url}/ui/#task={task_id}")
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")


@pytest.mark.parametrize("end", ["input-required", "completed"])
async def test_task_without_its_event_log_is_drawn_from_tasks_get_in_history_order(
    page: Page,
    console_gateway: ConsoleGateway,
    gateway_http: httpx.AsyncClient,
    redis: Redis,
    end: str,
) -> None:
    # Three turns with the `ask` agent; the third ends `end`.
    words = ["one", "two", "three"]
    first = await api_send(gateway_http, console_gateway, "ask", words[0])
    task_id, context_id = first["id"], first["contextId"]
    for word in words[1:]:
        metadata = {"echo": {"finalState": end}} if word == words[-1] else None
        task = await api_send(
            gateway_http,
            console_gateway,
            "ask",
            word,
            task_id=task_id,
            context_id=context_id,
            metadata=metadata,
        )
    assert task["status"]["state"] == end

    task = await tasks_get(gateway_http, console_gateway, task_id)
    history = [(message["role"], text_of(message)) for message in task["history"]]
    expected_history = [
        ("user", "one"),
        ("agent", question("one")),
        ("user", "two"),
        ("agent", question("two")),
        ("user", "three"),
    ]
    if end == "input-required":
        expected_history.append(("agent", question("three")))
    assert history == expected_history
    # The log is gone (as when it expired); the task's snapshot and record are not.
    assert await redis.delete(task_events_key(task_id)) == 1

    await open_address(page, console_gateway, task_id)
    state = page.get_by_test_id("task-state")
    await expect(state).to_have_attribute("data-state", end)
    await expect(page.get_by_test_id("task-id")).to_have_text(task_id)
    # The history as it came, the final state before its message.
    expected = [
        ("user-message", "one"),
        ("agent-message", question("one")),
        ("user-message", "two"),
        ("agent-message", question("two")),
        ("user-message", "three"),
        ("state-change", end),
    ]
    if end == "input-required":
        expected.append(("agent-message", question("three")))
    assert await shown_entries(page) == expected
    await expect(page.get_by_test_id("turn")).to_have_count(3)
    # Whose each reply is, the Task does not say: they are listed together, in the task's order.
    assert await shown_entries(page, "task-artifacts") == [
        ("artifact-text", word) for word in words
    ]
    await expect(page.get_by_test_id("task-artifacts")).to_be_visible()
    await expect(page.get_by_test_id("error")).to_be_hidden()
    await expect(page.get_by_test_id("task-error")).to_be_hidden()

    if end == "completed":
        await expect(page.get_by_test_id("stream-status")).to_have_attribute(
            "data-status", "closed"
        )
        await expect(page.get_by_test_id("stream-status")).to_have_text("Stream ended")
        await expect(page.get_by_test_id("send")).to_have_text("Send")
        await expect(page.get_by_test_id("cancel")).to_be_disabled()
        return

    # Waiting for input, it streams on: a reply from the page continues it, live.
    await expect(page.get_by_test_id("stream-status")).to_have_attribute("data-status", "live")
    await expect(page.get_by_test_id("send")).to_have_text("Reply")
    await page.get_by_label("Message").fill("four")
    await page.get_by_test_id("send").click()
    await expect(page.get_by_test_id("turn")).to_have_count(4)
    await expect(page.get_by_test_id("agent-message")).to_have_count(4)
    assert await shown_entries(page) == [
        *expected,
        ("user-message", "four"),
        ("state-change", "working"),
        ("artifact-text", "four"),
        ("state-change", "input-required"),
        ("agent-message", question("four")),
    ]
    task = await tasks_get(gateway_http, console_gateway, task_id)
    assert [text_of(message) for message in task["history"]][-2:] == ["four", question("four")]
    await page.get_by_test_id("cancel").click()
    await expect(state).to_have_attribute("data-state", "canceled")


async def test_task_with_its_event_log_replays_it_over_the_record(
    page: Page, console_gateway: ConsoleGateway, gateway_http: httpx.AsyncClient
) -> None:
    first = await api_send(gateway_http, console_gateway, "ask", "alpha")
    await api_send(
        gateway_http,
        console_gateway,
        "ask",
        "beta",
        task_id=first["id"],
        context_id=first["contextId"],
        metadata={"echo": {"finalState": "completed"}},
    )
    await open_address(page, console_gateway, first["id"])
    await expect(page.get_by_test_id("stream-status")).to_have_attribute("data-status", "closed")
    # The log knows each turn's states and replies: each in its turn.
    assert await shown_entries(page) == [
        ("user-message", "alpha"),
        ("state-change", "submitted"),
        ("state-change", "working"),
        ("artifact-text", "alpha"),
        ("state-change", "input-required"),
        ("agent-message", question("alpha")),
        ("user-message", "beta"),
        ("state-change", "working"),
        ("artifact-text", "beta"),
        ("state-change", "completed"),
    ]
    await expect(page.get_by_test_id("task-artifacts")).to_be_hidden()


async def test_unknown_task_address_shows_one_clear_message_and_no_task_panel(
    page: Page, console_gateway: ConsoleGateway, gateway_http: httpx.AsyncClient
) -> None:
    unknown = str(uuid.uuid4())
    body = {"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": unknown}}
    answer: Any = (await gateway_http.post(console_gateway.url, json=body)).json()
    assert_valid_response(answer, "tasks/get")
    assert answer["error"]["code"] == -32001
    says = (
        f"The gateway has no task “{unknown}” for you: it answered Task not found "
        "(JSON-RPC error -32001). It may have expired, or the address may be mistyped."
    )
    streams: list[Request] = []
    page.on(
        "request", lambda request: streams.append(request) if "/events" in request.url else None
    )

    # A task on screen first: the address then changes to one the gateway does not know.
    await open_console(page, console_gateway)
    await send(page, "quick", "shown before")
    await expect(page.get_by_test_id("task-state")).to_have_attribute("data-state", "completed")
    await page.evaluate("id => { window.location.hash = `task=${id}`; }", unknown)

    not_found = page.get_by_test_id("task-not-found")
    await expect(not_found).to_be_visible()
    await expect(not_found.get_by_role("heading")).to_have_text("No such task")
    await expect(page.get_by_test_id("task-not-found-text")).to_have_text(says)
    await expect(page.get_by_test_id("task")).to_be_hidden()
    await expect(page.get_by_test_id("timeline").locator("li")).to_have_count(0)
    # One message: no other alert beside it.
    await expect(page.get_by_role("alert")).to_have_count(1)
    await expect(page.get_by_test_id("error")).to_be_hidden()
    await expect(page.locator('[data-testid="task-list-item"][aria-current]')).to_have_count(0)
    await expect(page.get_by_test_id("send")).to_have_text("Send")

    # Opened afresh on that address, the same.
    await page.reload()
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    await expect(page.get_by_test_id("task-not-found-text")).to_have_text(says)
    await expect(page.get_by_test_id("task")).to_be_hidden()
    await expect(page.get_by_role("alert")).to_have_count(1)
    assert [request for request in streams if unknown in request.url] == []

    # "Start a new task" clears it, and the address.
    await page.get_by_role("button", name="Start a new task").click()
    await expect(not_found).to_be_hidden()
    await expect(page).to_have_url(f"{console_gateway.url}/ui/")
    await expect(page.get_by_label("Message")).to_be_focused()
