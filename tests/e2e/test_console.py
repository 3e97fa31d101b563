"""The web console (`GET /ui`) in Debian's Chromium against the real stack (a gateway process, echo workers,
Temporal, Redis): a reply streamed in pieces, a stream dropped mid-reply by a gateway restart and resumed
with nothing doubled or missing, and cancel."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.async_api import Page, Request, Route, expect
from redis.asyncio import Redis

from tests.e2e.conftest import API_KEY, TEMPORAL_UI_URL, ConsoleGateway, console_jwt
from tests.e2e.console_page import (
    is_send,
    is_task_call,
    open_console,
    reply,
    reply_steps,
    reply_text,
    request_id,
    script_gateway,
    scripted_task,
    send,
    streamed_text,
    tasks_get,
    wait_for_reply_length,
)

# The headers that may carry a credential to the auth gateway.
CREDENTIAL_HEADERS = {"authorization", "x-api-key"}


async def test_console_streams_reply_in_pieces_to_completion(
    page: Page, console_gateway: ConsoleGateway, gateway_http: httpx.AsyncClient
) -> None:
    text = "The quick brown fox jumps over the lazy dog while the console watches."
    await open_console(page, console_gateway)
    task_id = await send(page, "quick", text)

    await expect(page.get_by_test_id("task-state")).to_have_attribute("data-state", "completed")
    assert await page.get_by_test_id("task-state").inner_text() == "completed"
    task = await tasks_get(gateway_http, console_gateway, task_id)
    assert task["status"]["state"] == "completed"
    replied = "".join(part["text"] for part in task["artifacts"][0]["parts"])
    assert replied == text
    assert await reply_text(page) == replied

    steps = await reply_steps(page)
    # The reply grew in several pieces, each what the agent had sent so far, then the whole text.
    assert steps[-1] == replied
    assert len(steps) > 2, steps
    assert all(replied.startswith(step) for step in steps), steps
    assert len(set(steps)) == len(steps)

    href = f"{TEMPORAL_UI_URL}/namespaces/default/workflows/{task_id}"
    await expect(page.get_by_test_id("temporal-link")).to_have_attribute("href", href)
    # The gateway's task list, asked again when the stream ended, shows the task as it ended.
    listed = page.get_by_test_id("task-list-item").filter(has_text="The quick brown fox")
    await expect(listed).to_have_attribute("data-task-id", task_id)
    await expect(listed.get_by_test_id("task-list-state")).to_have_text("completed")
    await expect(listed.get_by_test_id("task-list-temporal-link")).to_have_attribute("href", href)
    await expect(listed).to_have_attribute("aria-current", "true")
    await expect(page.get_by_test_id("stream-status")).to_have_attribute("data-status", "closed")
    await expect(page.get_by_test_id("error")).to_be_hidden()

    # Reopened from the list (after a reload: the gateway keeps the list), the task replays from its start.
    await page.get_by_test_id("new-task").click()
    await expect(page.get_by_test_id("task")).to_be_hidden()
    await page.reload()
    await page.get_by_test_id("task-list-item").filter(has_text="The quick brown fox").click()
    await expect(page.get_by_test_id("task-id")).to_have_text(task_id)
    await expect(page.get_by_test_id("task-state")).to_have_attribute("data-state", "completed")
    await expect(page.get_by_test_id("artifact-text")).to_have_text(replied)
    await expect(page.get_by_test_id("user-message")).to_contain_text(text)


async def test_console_stream_dropped_mid_reply_resumes_without_doubling(
    page: Page,
    console_gateway: ConsoleGateway,
    gateway_http: httpx.AsyncClient,
    redis: Redis,
) -> None:
    text = (
        "Resume after a dropped stream: every piece arrives exactly once, in order, "
        "with nothing missing and nothing doubled."
    )
    event_requests: list[Request] = []
    page.on(
        "request",
        lambda request: event_requests.append(request) if "/events" in request.url else None,
    )
    await open_console(page, console_gateway)
    task_id = await send(page, "slow", text)
    await wait_for_reply_length(page, 10)

    # The gateway stops (SIGTERM ends its open streams) and comes back on the same port; the page's
    # EventSource reconnects by itself with Last-Event-ID.
    await console_gateway.restart()

    await expect(page.get_by_test_id("task-state")).to_have_attribute(
        "data-state", "completed", timeout=30_000
    )
    task = await tasks_get(gateway_http, console_gateway, task_id)
    replied = "".join(part["text"] for part in task["artifacts"][0]["parts"])
    assert replied == text
    assert await reply_text(page) == replied
    assert await streamed_text(redis, task_id) == replied

    steps = await reply_steps(page)
    assert steps[-1] == replied
    assert all(replied.startswith(step) for step in steps), steps

    # The drop really happened mid-reply: the page saw it and reconnected, resuming after the last event
    # it had.
    stream = page.get_by_test_id("stream-status")
    assert int(await stream.get_attribute("data-drops") or 0) >= 1
    statuses: list[tuple[str, int]] = [
        tuple(s) for s in await page.evaluate("window.streamStatuses")
    ]
    dropped_at = [length for status, length in statuses if status == "reconnecting"]
    assert dropped_at, statuses
    assert 10 <= dropped_at[0] < len(text), statuses
    assert statuses[-1] == ("closed", len(text)), statuses
    mine = [request for request in event_requests if f"/tasks/{task_id}/events" in request.url]
    assert len(mine) >= 2
    first_headers = await mine[0].all_headers()
    assert "last-event-id" not in first_headers
    resumed = [(await request.all_headers()).get("last-event-id") for request in mine[1:]]
    assert any(resumed), resumed


async def test_console_cancel_mid_reply_stops_the_task(
    page: Page,
    console_gateway: ConsoleGateway,
    gateway_http: httpx.AsyncClient,
    redis: Redis,
) -> None:
    text = "Cancel me halfway: this sentence should never be shown to its very last word."
    await open_console(page, console_gateway)
    task_id = await send(page, "slow", text)
    await wait_for_reply_length(page, 6)
    cancel = page.get_by_test_id("cancel")
    await expect(cancel).to_be_enabled()
    await cancel.click()

    await expect(page.get_by_test_id("task-state")).to_have_attribute("data-state", "canceled")
    # The stream ends with the task's final event.
    await expect(page.get_by_test_id("stream-status")).to_have_attribute("data-status", "closed")
    task = await tasks_get(gateway_http, console_gateway, task_id)
    assert task["status"]["state"] == "canceled"
    await expect(cancel).to_be_disabled()

    shown = await reply_text(page)
    assert shown == await streamed_text(redis, task_id)
    assert 6 <= len(shown) < len(text)
    assert text.startswith(shown)
    # Several chunk intervals later, nothing more has arrived.
    await asyncio.sleep(0.6)
    assert await reply_text(page) == shown
    listed = page.locator(f'[data-testid="task-list-item"][data-task-id="{task_id}"]')
    await expect(listed.get_by_test_id("task-list-state")).to_have_text("canceled")


async def test_console_input_required_reply_continues_the_same_task(
    page: Page, console_gateway: ConsoleGateway, gateway_http: httpx.AsyncClient
) -> None:
    await open_console(page, console_gateway)
    task_id = await send(page, "ask", "first question")
    state = page.get_by_test_id("task-state")
    await expect(state).to_have_attribute("data-state", "input-required")
    await expect(page.get_by_test_id("agent-message")).to_contain_text(
        "Echoed 14 characters. Send another message to continue."
    )
    await expect(page.get_by_test_id("send")).to_have_text("Reply")
    await expect(page.get_by_label("Agent")).to_be_disabled()

    await page.get_by_label("Message").fill("second answer")
    await page.get_by_test_id("send").click()
    await expect(page.get_by_test_id("turn")).to_have_count(2)
    await expect(page.get_by_test_id("artifact-text")).to_have_text(
        ["first question", "second answer"]
    )
    await expect(page.get_by_test_id("user-message")).to_contain_text(
        ["first question", "second answer"]
    )
    await expect(page.get_by_test_id("agent-message")).to_have_count(2)
    await expect(page.get_by_test_id("task-id")).to_have_text(task_id)
    await expect(state).to_have_attribute("data-state", "input-required")

    task = await tasks_get(gateway_http, console_gateway, task_id)
    users = [m for m in task["history"] if m["role"] == "user"]
    assert [m["parts"][0]["text"] for m in users] == ["first question", "second answer"]
    assert all(m["contextId"] == task["contextId"] for m in users)

    await page.get_by_test_id("cancel").click()
    await expect(state).to_have_attribute("data-state", "canceled")
    await expect(page.get_by_test_id("send")).to_have_text("Send")
    await expect(page.get_by_label("Agent")).to_be_enabled()


def status(task_id: str, state: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "task.status", "taskId": task_id, "status": {"state": state}}
    if data is not None:
        parts = [{"kind": "data", "data": data}]
        event["status"]["message"] = {
            "kind": "message",
            "role": "agent",
            "messageId": f"tool-{data['event']}",
            "parts": parts,
        }
    return event


def progress(task_id: str, text: str, *, append: bool, last: bool = False) -> dict[str, Any]:
    artifact = reply(text)
    return {
        "type": "task.progress",
        "taskId": task_id,
        "artifact": artifact,
        "append": append,
        "lastChunk": last,
    }


SNAPSHOT_TASK = "00000000-0000-4000-8000-000000000003"


async def test_console_tool_events_and_restarted_artifact_render_from_events(
    page: Page, console_gateway: ConsoleGateway
) -> None:
    task_id = "00000000-0000-4000-8000-000000000001"
    closing = {"kind": "message", "role": "agent", "messageId": "m2"}
    final = scripted_task(
        task_id,
        "completed",
        artifacts=[
            {"artifactId": "a1", "name": "reply", "parts": [{"kind": "text", "text": "2 + 3 = 5"}]}
        ],
    )
    final["status"]["message"] = {**closing, "parts": [{"kind": "text", "text": "2 + 3 = 5"}]}
    await script_gateway(
        page,
        task_id,
        [
            {"type": "task.created", "task": scripted_task(task_id, "submitted")},
            status(task_id, "working"),
            progress(task_id, "Let me", append=False),
            progress(task_id, " add them", append=True),
            status(
                task_id,
                "working",
                {"event": "tool_executing", "tool": "add", "input": {"a": 2, "b": 3}},
            ),
            status(
                task_id,
                "working",
                {"event": "tool_completed", "tool": "add", "output": "5", "isError": False},
            ),
            # A retried agent attempt starts its artifact again (append=false): the text is replaced.
            progress(task_id, "2 + 3", append=False),
            progress(task_id, " = 5", append=True, last=True),
            {"type": "task.completed", "task": final},
        ],
    )
    await open_console(page, console_gateway)
    assert await send(page, "quick", "What is 2 + 3?") == task_id

    await expect(page.get_by_test_id("task-state")).to_have_attribute("data-state", "completed")
    assert await reply_steps(page) == ["Let me", "Let me add them", "2 + 3", "2 + 3 = 5"]
    tools = page.get_by_test_id("tool-event")
    await expect(tools).to_have_count(2)
    await expect(tools.nth(0)).to_contain_text("Calling tool add")
    await expect(tools.nth(0).locator("pre")).to_have_text('{"a":2,"b":3}')
    await expect(tools.nth(1)).to_contain_text("Tool add returned")
    await expect(tools.nth(1).locator("pre")).to_have_text("5")
    # The closing message repeats the streamed reply: shown once.
    await expect(page.get_by_test_id("agent-message")).to_have_count(0)
    await expect(page.get_by_test_id("artifact")).to_have_attribute("aria-busy", "false")
    # In the order things happened: the reply's last chunks came after the tool call.
    order = await page.get_by_test_id("turn").evaluate(
        "turn => [...turn.children].map(child => child.dataset.testid || child.className)"
    )
    assert order == [
        "user-slot",
        "state-change",
        "state-change",
        "tool-event",
        "tool-event",
        "artifact",
        "state-change",
    ]


async def test_console_links_a_file_part_only_when_its_uri_is_http(
    page: Page, console_gateway: ConsoleGateway
) -> None:
    task_id = "00000000-0000-4000-8000-000000000002"
    files = [
        {
            "name": "report.pdf",
            "mimeType": "application/pdf",
            "uri": "https://files.test/report.pdf",
        },
        # Would run with the console's origin, where the credential is kept.
        {"name": "notes.txt", "uri": "JavaScript:window.hacked=1"},
        {"mimeType": "text/html", "uri": "data:text/html,<script>window.hacked=1</script>"},
        {"uri": "javascript:window.hacked=1"},
    ]
    artifact = {"artifactId": "a1", "parts": [{"kind": "file", "file": file} for file in files]}
    done = scripted_task(task_id, "completed", artifacts=[artifact])
    await script_gateway(page, task_id, [{"type": "task.completed", "task": done}])
    await open_console(page, console_gateway)
    assert await send(page, "quick", "Send me files") == task_id

    await expect(page.get_by_test_id("task-state")).to_have_attribute("data-state", "completed")
    await expect(page.get_by_test_id("artifact")).to_contain_text("File: report.pdf")
    hrefs = await page.locator("[href]").evaluate_all(
        "links => links.map(link => new URL(link.getAttribute('href'), location.href).protocol)"
    )
    assert set(hrefs) <= {"http:", "https:"}, hrefs

    parts = page.get_by_test_id("file-part")
    shown = await parts.evaluate_all(
        """parts => parts.map(part => [part.tagName, part.textContent, part.getAttribute("href"),
            part.getAttribute("target"), part.getAttribute("rel")])"""
    )
    assert shown == [
        ["A", "File: report.pdf", files[0]["uri"], "_blank", "noopener noreferrer"],
        ["SPAN", "File: notes.txt", None, None, None],
        ["SPAN", "File: text/html", None, None, None],
        ["SPAN", "File: javascript:window.hacked=1", None, None, None],
    ]
    await parts.nth(1).click()
    await parts.nth(3).click()
    assert await page.evaluate("window.hacked") is None


@pytest.mark.parametrize(
    ("events", "steps", "state"),
    [
        # The page had "ab" when the log was trimmed: it reconnects to a snapshot with the whole "abcdef",
        # and the chunks after it append to that.
        (
            [
                progress(SNAPSHOT_TASK, "ab", append=False),
                {
                    "type": "task.created",
                    "task": scripted_task(SNAPSHOT_TASK, "working", artifacts=[reply("abcdef")]),
                },
                progress(SNAPSHOT_TASK, "gh", append=True, last=True),
            ],
            ["ab", "abcdef", "abcdefgh"],
            "working",
        ),
        # The task ended while the page was away: a finished snapshot is its end.
        (
            [
                progress(SNAPSHOT_TASK, "ab", append=False),
                {
                    "type": "task.created",
                    "task": scripted_task(
                        SNAPSHOT_TASK, "completed", artifacts=[reply("abcdefgh")]
                    ),
                },
            ],
            ["ab", "abcdefgh"],
            "completed",
        ),
        # The chunks after "ab" were trimmed away; the task's last event holds them.
        (
            [
                progress(SNAPSHOT_TASK, "ab", append=False),
                {
                    "type": "task.completed",
                    "task": scripted_task(
                        SNAPSHOT_TASK, "completed", artifacts=[reply("abcdefgh")]
                    ),
                },
            ],
            ["ab", "abcdefgh"],
            "completed",
        ),
    ],
    ids=["working-snapshot", "completed-snapshot", "task-completed"],
)
async def test_console_task_in_the_stream_replaces_the_artifacts_it_carries(
    page: Page,
    console_gateway: ConsoleGateway,
    events: list[dict[str, Any]],
    steps: list[str],
    state: str,
) -> None:
    created = {"type": "task.created", "task": scripted_task(SNAPSHOT_TASK, "submitted")}
    await script_gateway(page, SNAPSHOT_TASK, [created, status(SNAPSHOT_TASK, "working"), *events])
    await open_console(page, console_gateway)
    assert await send(page, "quick", "What is 2 + 3?") == SNAPSHOT_TASK

    await expect(page.get_by_test_id("artifact-text")).to_have_text("abcdefgh")
    await expect(page.get_by_test_id("task-state")).to_have_attribute("data-state", state)
    assert await reply_steps(page) == steps
    await expect(page.get_by_test_id("artifact")).to_have_count(1)


async def test_console_refused_send_shows_the_json_rpc_error(
    page: Page, console_gateway: ConsoleGateway
) -> None:
    async def refuse(route: Route) -> None:
        error = {"code": -32005, "message": "Incompatible content types: the agent takes text only"}
        await route.fulfill(json={"jsonrpc": "2.0", "id": request_id(route), "error": error})

    await page.route("**/agents/quick", refuse)
    await open_console(page, console_gateway)
    await page.get_by_label("Agent").select_option("quick")
    await page.get_by_label("Message").fill("hello")
    await page.get_by_test_id("send").click()
    await expect(page.get_by_test_id("error")).to_have_text(
        "Incompatible content types: the agent takes text only (JSON-RPC error -32005)"
    )
    await expect(page.get_by_test_id("task")).to_be_hidden()
    await expect(page.get_by_label("Message")).to_have_value("hello")


async def test_console_with_auth_sends_the_stored_api_key(
    page: Page, auth_gateway: ConsoleGateway
) -> None:
    event_requests: list[Request] = []
    page.on("request", lambda r: event_requests.append(r) if "/events" in r.url else None)
    await open_console(page, auth_gateway)
    # The gateway takes both: the field says so.
    key = page.get_by_label("API key or JWT", exact=True)
    await expect(key).to_be_visible()
    await expect(page.get_by_test_id("gateway-info")).to_contain_text(
        "requests need an API key (X-API-Key) or a JWT (Authorization: Bearer)"
    )
    await page.get_by_label("Agent").select_option("quick")
    await page.get_by_label("Message").fill("who goes there")
    await page.get_by_test_id("send").click()
    await expect(page.get_by_test_id("error")).to_contain_text("(JSON-RPC error -32")
    await expect(page.get_by_test_id("task")).to_be_hidden()

    await key.fill(API_KEY)
    async with page.expect_request(is_send("quick")) as sent:
        await page.get_by_test_id("send").click()
    headers = await (await sent.value).all_headers()
    assert headers.get("x-api-key") == API_KEY
    assert "authorization" not in headers
    await expect(page.get_by_test_id("task-state")).to_have_attribute("data-state", "completed")
    await expect(page.get_by_test_id("artifact-text")).to_have_text("who goes there")
    await expect(page.get_by_test_id("error")).to_be_hidden()
    # EventSource cannot set headers: the key rides in the stream's query string.
    assert event_requests
    for request in event_requests:
        query = parse_qs(urlsplit(request.url).query)
        assert query["api_key"] == [API_KEY]
        assert "access_token" not in query

    await page.reload()
    await expect(page.get_by_label("API key or JWT", exact=True)).to_have_value(API_KEY)


async def test_console_with_auth_sends_a_jwt_as_bearer_and_a_new_one_on_reconnect(
    page: Page, auth_gateway: ConsoleGateway
) -> None:
    first, second = console_jwt(), console_jwt()
    # The calls about the task (the task list's ListTasks calls aside).
    rpc_requests: list[Request] = []
    page.on(
        "request",
        lambda r: rpc_requests.append(r) if is_task_call(r) else None,
    )
    stream_urls: list[str] = []
    first_stream = asyncio.Event()
    token_changed = asyncio.Event()

    async def events(route: Route) -> None:
        stream_urls.append(route.request.url)
        if len(stream_urls) > 1:
            await route.continue_()
            return
        # The first stream waits until the user pasted another token, then fails (as when a token
        # expired): the page reconnects with what the field holds then.
        first_stream.set()
        await token_changed.wait()
        await route.fulfill(status=503, body="")

    await page.route("**/tasks/*/events*", events)
    await open_console(page, auth_gateway)
    token = page.get_by_label("API key or JWT", exact=True)
    await token.fill(first)
    task_id = await send(page, "ask", "token please")
    await asyncio.wait_for(first_stream.wait(), 10)
    await token.fill(second)
    token_changed.set()

    state = page.get_by_test_id("task-state")
    await expect(state).to_have_attribute("data-state", "input-required")
    await expect(page.get_by_test_id("artifact-text")).to_have_text("token please")
    await page.get_by_test_id("cancel").click()
    await expect(state).to_have_attribute("data-state", "canceled")
    await expect(page.get_by_test_id("error")).to_be_hidden()

    streams = [parse_qs(urlsplit(url).query) for url in stream_urls]
    assert [url.split("?")[0] for url in stream_urls[:2]] == [
        f"{auth_gateway.url}/tasks/{task_id}/events"
    ] * 2
    assert streams[0] == {"access_token": [first]}
    assert all(query["access_token"] == [second] for query in streams[1:]), streams
    assert all("api_key" not in query for query in streams), streams
    # message/send with the first token; after the change, the stream's fallback and cancel with the second.
    calls = [((r.post_data_json or {})["method"], await r.all_headers()) for r in rpc_requests]
    assert [(method, headers.get("authorization")) for method, headers in calls] == [
        ("message/send", f"Bearer {first}"),
        ("tasks/get", f"Bearer {second}"),
        ("tasks/cancel", f"Bearer {second}"),
    ]
    assert all("x-api-key" not in headers for _, headers in calls)


@pytest.mark.parametrize(
    ("schemes", "label", "pasted", "header", "param"),
    [
        # Only JWTs: whatever is pasted is one.
        (["bearer"], "JWT (Bearer token)", "not-three-segments", "authorization", "access_token"),
        # Only API keys: even a JWT-shaped key is a key.
        (["apiKey"], "API key", "aaa.bbb.ccc", "x-api-key", "api_key"),
    ],
    ids=["bearer-only", "api-key-only"],
)
async def test_console_credential_goes_by_the_one_scheme_the_gateway_takes(
    page: Page,
    console_gateway: ConsoleGateway,
    schemes: list[str],
    label: str,
    pasted: str,
    header: str,
    param: str,
) -> None:
    async def config(route: Route) -> None:
        answer = await route.fetch()
        body = await answer.json()
        body["auth"] = {"enabled": True, "apiKeyHeader": "X-API-Key", "schemes": schemes}
        await route.fulfill(response=answer, json=body)

    task_id = "00000000-0000-4000-8000-000000000004"
    done = scripted_task(task_id, "completed", artifacts=[reply("hi")])
    await page.route("**/ui/config.json", config)
    await script_gateway(page, task_id, [{"type": "task.completed", "task": done}])
    await open_console(page, console_gateway)
    await page.get_by_label(label, exact=True).fill(pasted)
    async with (
        page.expect_request(f"**/tasks/{task_id}/events*") as stream,
        page.expect_request(is_send("quick")) as sent,
    ):
        assert await send(page, "quick", "hi") == task_id

    headers = await (await sent.value).all_headers()
    sent_credential = {name: value for name, value in headers.items() if name in CREDENTIAL_HEADERS}
    expected = f"Bearer {pasted}" if header == "authorization" else pasted
    assert sent_credential == {header: expected}
    assert parse_qs(urlsplit((await stream.value).url).query) == {param: [pasted]}
    await expect(page.get_by_test_id("artifact-text")).to_have_text("hi")
