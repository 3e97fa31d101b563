"""The options panel beside the message box, in Debian's Chromium: the echo agent's scripting (the
message's `metadata.echo`), its presets, a file and a data part attached; what the page sends (read off
the request, and back from `tasks/get`), what the real echo agent then does with it, and the panel's
state across a reload."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
from playwright.async_api import FilePayload, Page, Request, expect
from redis.asyncio import Redis

from tests.e2e.conftest import ConsoleGateway
from tests.e2e.console_page import (
    is_send,
    open_console,
    reply_steps,
    reply_text,
    script_gateway,
    scripted_task,
    send,
    streamed_text,
    tasks_get,
    text_of,
    wait_for_reply_length,
)

PRESETS = ["Instant", "Stream slowly", "Ask for input", "Fail"]
SCRIPTED_TASK = "00000000-0000-4000-8000-000000000010"


async def preview(page: Page) -> Any:
    """What the panel says the next message will carry, as JSON."""
    return json.loads(await page.get_by_test_id("options-preview").inner_text())


async def fields(page: Page) -> tuple[str, str, str]:
    return (
        await page.get_by_label("Chunks").input_value(),
        await page.get_by_label("Delay (s)").input_value(),
        await page.get_by_label("Turn ends").input_value(),
    )


async def pressed(page: Page) -> list[str]:
    """The presets shown as chosen."""
    buttons = page.get_by_test_id("preset")
    await expect(buttons).to_have_text(PRESETS)
    states = await buttons.evaluate_all(
        "buttons => buttons.map(button => [button.textContent, button.getAttribute('aria-pressed')])"
    )
    return [name for name, state in states if state == "true"]


async def sent_message(page: Page, text: str) -> dict[str, Any]:
    """Types `text`, clicks Send; the message of the `message/send` the page made, without its id."""
    await page.get_by_label("Message").fill(text)
    async with page.expect_request(is_send("quick")) as sent:
        await page.get_by_test_id("send").click()
    body = (await sent.value).post_data_json
    assert isinstance(body, dict)
    assert body["method"] == "message/send"
    assert body["params"]["configuration"] == {"blocking": False}
    message: dict[str, Any] = body["params"]["message"]
    assert message.pop("messageId")
    return message


def text_message(text: str, **fields: Any) -> dict[str, Any]:
    return {"kind": "message", "role": "user", "parts": [{"kind": "text", "text": text}], **fields}


async def test_options_presets_set_exactly_the_metadata_sent_and_survive_a_reload(
    page: Page, console_gateway: ConsoleGateway
) -> None:
    done = scripted_task(SCRIPTED_TASK, "completed")
    await script_gateway(page, SCRIPTED_TASK, [{"type": "task.completed", "task": done}])
    await open_console(page, console_gateway)
    await page.get_by_label("Agent").select_option("quick")
    # A new browser: no options, no metadata (the agent's own pace), no preset.
    assert await pressed(page) == []
    assert await fields(page) == ("", "", "")

    cases: list[tuple[str, tuple[str, str, str], dict[str, Any] | None]] = [
        ("Stream slowly", ("20", "0.5", ""), {"echo": {"chunks": 20, "delay": 0.5}}),
        ("Ask for input", ("", "", "input-required"), {"echo": {"finalState": "input-required"}}),
        ("Fail", ("", "", "fail"), {"echo": {"failOnTurn": 1}}),
        ("Instant", ("1", "0", ""), {"echo": {"chunks": 1, "delay": 0}}),
    ]
    for name, values, metadata in cases:
        await page.get_by_role("button", name=name, exact=True).click()
        assert await pressed(page) == [name]
        assert await fields(page) == values
        await page.get_by_label("Message").fill(f"preset {name}")
        expected = text_message(f"preset {name}", **({"metadata": metadata} if metadata else {}))
        shown = {key: expected[key] for key in ("metadata", "parts") if key in expected}
        assert await preview(page) == shown
        assert await sent_message(page, f"preset {name}") == expected
        await expect(page.get_by_test_id("task-state")).to_have_attribute("data-state", "completed")

    # Fields typed by hand: no preset is chosen; the values go as numbers.
    await page.get_by_label("Chunks").fill("3")
    await page.get_by_label("Delay (s)").fill("0.25")
    await page.get_by_label("Turn ends").select_option("completed")
    assert await pressed(page) == []
    metadata = {"echo": {"chunks": 3, "delay": 0.25, "finalState": "completed"}}
    assert await sent_message(page, "by hand") == text_message("by hand", metadata=metadata)

    # The panel's state is this browser's: a reload shows it as it was.
    await page.reload()
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    assert await fields(page) == ("3", "0.25", "completed")
    assert await pressed(page) == []
    assert await preview(page) == {"metadata": metadata, "parts": []}


async def test_options_refuse_what_the_echo_agent_would_not_take(
    page: Page, console_gateway: ConsoleGateway
) -> None:
    done = scripted_task(SCRIPTED_TASK, "completed")
    await script_gateway(page, SCRIPTED_TASK, [{"type": "task.completed", "task": done}])
    sends: list[Request] = []
    page.on("request", lambda request: sends.append(request) if is_send("quick")(request) else None)
    await open_console(page, console_gateway)
    await page.get_by_label("Agent").select_option("quick")
    await page.get_by_label("Message").fill("refused")
    problem = page.get_by_test_id("options-problem")
    data = page.get_by_label("Data part (a JSON object)")
    cases = [
        (page.get_by_label("Chunks"), "0", "Chunks must be a whole number from 1 to 10000."),
        (page.get_by_label("Chunks"), "2.5", "Chunks must be a whole number from 1 to 10000."),
        (page.get_by_label("Delay (s)"), "-1", "Delay must be a number of seconds from 0 to 3600."),
        (
            data,
            "[1, 2]",
            'The data part must be a JSON object, like {"city": "Lyon"}, not an array.',
        ),
        (
            data,
            '"Lyon"',
            'The data part must be a JSON object, like {"city": "Lyon"}, not a string.',
        ),
        (data, "null", 'The data part must be a JSON object, like {"city": "Lyon"}, not null.'),
    ]
    for field, value, says in cases:
        await field.fill(value)
        await expect(problem).to_have_text(says)
        await expect(field).to_have_attribute("aria-invalid", "true")
        await expect(page.get_by_test_id("options-preview")).to_have_text(
            "Nothing can be sent until the options above are right."
        )
        await page.get_by_test_id("send").click()
        # Refused in the page: the field to fix has the focus, the message stays.
        await expect(field).to_be_focused()
        await expect(page.get_by_label("Message")).to_have_value("refused")
        await expect(page.get_by_test_id("task")).to_be_hidden()
        await field.fill("")
        await expect(problem).to_be_hidden()
        await expect(field).not_to_have_attribute("aria-invalid", "true")

    await data.fill("{not json")
    await expect(problem).to_contain_text("The data part is not JSON (")
    await expect(problem).to_contain_text('type a JSON object, like {"city": "Lyon"}.')
    await page.get_by_test_id("send").click()
    await expect(page.get_by_test_id("task")).to_be_hidden()

    await data.fill('{"city": "Lyon"}')
    await expect(problem).to_be_hidden()
    assert await sent_message(page, "accepted") == {
        "kind": "message",
        "role": "user",
        "parts": [{"kind": "text", "text": "accepted"}, {"kind": "data", "data": {"city": "Lyon"}}],
    }
    # Only the last click sent anything (requests are seen in the order they are made).
    assert len(sends) == 1


async def test_options_stream_slowly_grows_piece_by_piece_until_canceled(
    page: Page,
    console_gateway: ConsoleGateway,
    gateway_http: httpx.AsyncClient,
    redis: Redis,
) -> None:
    # 40 characters: 20 chunks of 2, half a second apart (the `quick` agent's own are 12 and 0.08 s).
    text = "Streamed slowly, two letters at a time.."
    assert len(text) == 40
    await open_console(page, console_gateway)
    await page.get_by_role("button", name="Stream slowly", exact=True).click()
    task_id = await send(page, "quick", text)
    await wait_for_reply_length(page, 6)
    cancel = page.get_by_test_id("cancel")
    await expect(cancel).to_be_enabled()
    await cancel.click()

    await expect(page.get_by_test_id("task-state")).to_have_attribute("data-state", "canceled")
    await expect(page.get_by_test_id("stream-status")).to_have_attribute("data-status", "closed")
    await expect(cancel).to_be_disabled()
    task = await tasks_get(gateway_http, console_gateway, task_id)
    assert task["status"]["state"] == "canceled"
    assert task["history"][0]["metadata"] == {"echo": {"chunks": 20, "delay": 0.5}}
    shown = await reply_text(page)
    assert shown == await streamed_text(redis, task_id)
    # Each chunk showed on its own: 2 letters, then 4, then 6…, and the cancel came before the end.
    steps = await reply_steps(page)
    assert steps == [text[: 2 * count] for count in range(1, len(steps) + 1)], steps
    assert 3 <= len(steps) < 20, steps
    assert steps[-1] == shown


async def test_options_ask_for_input_then_a_reply_continues_the_task(
    page: Page, console_gateway: ConsoleGateway, gateway_http: httpx.AsyncClient
) -> None:
    await open_console(page, console_gateway)
    await page.get_by_role("button", name="Ask for input", exact=True).click()
    task_id = await send(page, "quick", "first")
    state = page.get_by_test_id("task-state")
    await expect(state).to_have_attribute("data-state", "input-required")
    await expect(page.get_by_test_id("agent-message")).to_have_text(
        ["AgentEchoed 5 characters. Send another message to continue."]
    )
    await expect(page.get_by_test_id("send")).to_have_text("Reply")

    # The reply is the task's second turn: "Fail" would fail that one.
    await page.get_by_role("button", name="Fail", exact=True).click()
    assert (await preview(page))["metadata"] == {"echo": {"failOnTurn": 2}}
    await page.get_by_role("button", name="Instant", exact=True).click()
    await page.get_by_label("Message").fill("second")
    await page.get_by_test_id("send").click()

    await expect(state).to_have_attribute("data-state", "completed")
    await expect(page.get_by_test_id("task-id")).to_have_text(task_id)
    await expect(page.get_by_test_id("turn")).to_have_count(2)
    await expect(page.get_by_test_id("artifact-text")).to_have_text(["first", "second"])
    await expect(page.get_by_test_id("send")).to_have_text("Send")
    task = await tasks_get(gateway_http, console_gateway, task_id)
    users = [message for message in task["history"] if message["role"] == "user"]
    assert [text_of(message) for message in users] == ["first", "second"]
    assert users[0]["metadata"] == {"echo": {"finalState": "input-required"}}
    assert users[1]["metadata"] == {"echo": {"chunks": 1, "delay": 0}}
    assert task["status"]["state"] == "completed"


async def test_options_fail_shows_the_failed_state_and_the_agents_reason(
    page: Page, console_gateway: ConsoleGateway, gateway_http: httpx.AsyncClient
) -> None:
    await open_console(page, console_gateway)
    await page.get_by_role("button", name="Fail", exact=True).click()
    task_id = await send(page, "quick", "doomed")
    await expect(page.get_by_test_id("task-state")).to_have_attribute("data-state", "failed")
    task = await tasks_get(gateway_http, console_gateway, task_id)
    assert task["status"]["state"] == "failed"
    reason = text_of(task["status"]["message"])
    assert reason.endswith("failed: scripted failure on turn 1"), reason
    failed = page.get_by_test_id("agent-message")
    await expect(failed).to_have_text([f"Agent{reason}"])
    await expect(failed).to_have_class("message agent failed")
    await expect(page.get_by_test_id("cancel")).to_be_disabled()
    await expect(page.get_by_test_id("send")).to_have_text("Send")


async def test_options_a_file_and_a_data_part_reach_the_tasks_history(
    page: Page, console_gateway: ConsoleGateway, gateway_http: httpx.AsyncClient
) -> None:
    content = b"Hello, file!\n\x00\xff"
    data = {"city": "Lyon", "days": [1, 2], "ok": True}
    await open_console(page, console_gateway)
    await page.get_by_label("Attach a file").set_input_files(
        files=FilePayload(name="notes.bin", mimeType="application/x-notes", buffer=content)
    )
    await expect(page.get_by_test_id("option-file-name")).to_have_text(
        "notes.bin · application/x-notes · 15 bytes"
    )
    await page.get_by_label("Data part (a JSON object)").fill(json.dumps(data))
    await page.get_by_label("Message").fill("with attachments")
    file_part = {"name": "notes.bin", "mimeType": "application/x-notes"}
    assert await preview(page) == {
        "parts": [
            {"kind": "text", "text": "with attachments"},
            {"kind": "file", "file": {**file_part, "bytes": "(15 bytes in base64)"}},
            {"kind": "data", "data": data},
        ]
    }
    task_id = await send(page, "quick", "with attachments")
    await expect(page.get_by_test_id("task-state")).to_have_attribute("data-state", "completed")

    task = await tasks_get(gateway_http, console_gateway, task_id)
    file_part["bytes"] = base64.b64encode(content).decode()
    assert task["history"][0]["parts"] == [
        {"kind": "text", "text": "with attachments"},
        {"kind": "file", "file": file_part},
        {"kind": "data", "data": data},
    ]
    assert "metadata" not in task["history"][0]
    # The page shows them with the message, and in the echo's reply.
    user = page.get_by_test_id("user-message")
    await expect(user.get_by_test_id("file-part")).to_have_text("File: notes.bin")
    await expect(user.get_by_test_id("data-part")).to_have_text(
        json.dumps(data, separators=(",", ":"))
    )
    artifact = page.get_by_test_id("artifact")
    await expect(artifact.get_by_test_id("file-part")).to_have_text("File: notes.bin")
    await expect(artifact.get_by_test_id("data-part")).to_have_text(
        json.dumps(data, separators=(",", ":"))
    )

    # Removed, the file goes no more; the data part stays until cleared.
    await page.get_by_test_id("option-file-remove").click()
    await expect(page.get_by_test_id("option-file-info")).to_be_hidden()
    assert (await preview(page))["parts"] == [{"kind": "data", "data": data}]


async def test_options_refuse_a_file_too_large_to_send(
    page: Page, console_gateway: ConsoleGateway
) -> None:
    await open_console(page, console_gateway)
    await page.get_by_label("Attach a file").set_input_files(
        files=FilePayload(
            name="big.bin", mimeType="application/octet-stream", buffer=bytes(6_000_000)
        )
    )
    await expect(page.get_by_test_id("options-problem")).to_have_text(
        "big.bin is 6.0 MB: the console attaches files of up to 5.0 MB."
    )
    await expect(page.get_by_test_id("option-file-info")).to_be_hidden()
    assert await preview(page) == {"parts": []}
