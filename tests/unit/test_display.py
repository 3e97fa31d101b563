"""What the CLI prints for a task's results: plain (piped), live (a terminal) and `task get`'s lines,
never a control character from the server; and which results it cannot read."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pytest

from gateway.client.display import (
    INTERRUPTED,
    TURN_ENDS,
    UNSUCCESSFUL,
    Spinner,
    Transcript,
    json_text,
    parts_text,
    printable,
    status_line,
    task_lines,
    unreadable,
)
from gateway.client.listing import list_lines
from gateway.client.v1 import task_from_v1
from protocol import INTERRUPTED_STATES, TERMINAL_STATES, TaskState

TASK: dict[str, Any] = {
    "id": "t1",
    "contextId": "c1",
    "status": {"state": "submitted"},
    "kind": "task",
}


def status(
    state: str, text: str | None = None, *, final: bool = False, **data: Any
) -> dict[str, Any]:
    task_status: dict[str, Any] = {"state": state}
    event: dict[str, Any] = {
        "taskId": "t1",
        "contextId": "c1",
        "status": task_status,
        "final": final,
        "kind": "status-update",
    }
    parts: list[dict[str, Any]] = [{"kind": "text", "text": text}] if text is not None else []
    if data:
        parts.append({"kind": "data", "data": data})
    if parts:
        task_status["message"] = {
            "role": "agent",
            "parts": parts,
            "messageId": "m",
            "kind": "message",
        }
    return event


def chunk(text: str, *, append: bool, artifact_id: str = "a1") -> dict[str, Any]:
    return {
        "taskId": "t1",
        "contextId": "c1",
        "artifact": {"artifactId": artifact_id, "parts": [{"kind": "text", "text": text}]},
        "append": append,
        "kind": "artifact-update",
    }


# An agent streams "hel", "lo wo", is retried, and streams "hello", " world" again.
RETRIED = [
    TASK,
    status("working"),
    chunk("hel", append=False),
    chunk("lo wo", append=True),
    chunk("hello", append=False),
    chunk(" world", append=True),
    status("completed", "hello world", final=True),
]


class FakeTerminal(io.StringIO):
    encoding = "utf-8"


def transcript_of(results: list[Any], **options: Any) -> str:
    out = io.StringIO()
    transcript = Transcript(out, **options)
    for result in results:
        transcript.show(result)
    transcript.end()
    transcript.close()
    return out.getvalue()


def test_plain_prints_status_changes_and_the_reply_once_before_the_final_state() -> None:
    assert transcript_of(RETRIED) == (
        "task t1 (context c1)\nsubmitted\nworking\nhello world\ncompleted\n"
    )


def test_live_writes_the_reply_as_it_comes_and_a_restart_anew() -> None:
    assert transcript_of(RETRIED, live=True) == (
        "task t1 (context c1)\nsubmitted\nworking\nhello wo\n[restarted]\nhello world\ncompleted\n"
    )


def test_tool_steps_are_status_lines_between_the_replys_pieces() -> None:
    results = [
        TASK,
        status("working"),
        chunk("Let me add. ", append=False),
        status("working", event="tool_executing", tool="add", input={"a": 2, "b": 3}),
        status("working", event="tool_completed", tool="add", output="5", isError=False),
        chunk("It is 5.", append=True),
        status("completed", final=True),
    ]
    tool_lines = 'working: tool add {"a":2,"b":3}\nworking: tool add done: 5\n'
    assert transcript_of(results) == (
        "task t1 (context c1)\nsubmitted\nworking\n"
        + tool_lines
        + "Let me add. It is 5.\ncompleted\n"
    )
    assert transcript_of(results, live=True) == (
        "task t1 (context c1)\nsubmitted\nworking\nLet me add. \n"
        + tool_lines
        + "It is 5.\ncompleted\n"
    )


def test_a_reply_to_a_task_skips_its_snapshot() -> None:
    snapshot = {
        **TASK,
        "status": {"state": "input-required"},
        "artifacts": [{"artifactId": "old", "parts": [{"kind": "text", "text": "first"}]}],
    }
    results = [
        snapshot,
        status("working"),
        chunk("second", append=False, artifact_id="new"),
        status("input-required", "Say more.", final=True),
    ]
    assert transcript_of(results, snapshot_first=True) == (
        "task t1 (context c1)\nworking\nsecond\ninput-required: Say more.\n"
    )


def test_a_finished_task_from_message_send_prints_only_this_turns_artifacts() -> None:
    task = {
        **TASK,
        "status": {"state": "failed", "message": {"parts": [{"kind": "text", "text": "boom"}]}},
        "artifacts": [
            {"artifactId": "old", "parts": [{"kind": "text", "text": "first"}]},
            {"artifactId": "new", "parts": [{"kind": "text", "text": "second"}]},
        ],
    }
    assert transcript_of([task], earlier_artifacts=["old"]) == (
        "task t1 (context c1)\nsecond\nfailed: boom\n"
    )
    assert transcript_of([task], live=True, earlier_artifacts=["old"]) == (
        "task t1 (context c1)\nsecond\nfailed: boom\n"
    )


def test_a_message_reply_is_printed_as_it_is_and_ends_the_turn() -> None:
    message = {"role": "agent", "parts": [{"kind": "text", "text": "hi\n"}], "kind": "message"}
    out = io.StringIO()
    transcript = Transcript(out)
    transcript.show(message)
    assert (out.getvalue(), transcript.ended, transcript.state) == ("hi\n", True, None)


def test_quiet_prints_nothing_but_follows_the_task() -> None:
    out = io.StringIO()
    transcript = Transcript(out, quiet=True)
    for result in RETRIED:
        transcript.show(result)
    assert (out.getvalue(), transcript.task_id, transcript.state, transcript.ended) == (
        "",
        "t1",
        "completed",
        True,
    )


def test_status_line_leaves_out_a_message_that_repeats_the_reply() -> None:
    done = status("completed", "hello world\n")["status"]
    assert status_line(done, ["hello world"]) == "completed"
    assert status_line(done, ["other"]) == "completed: hello world\n"
    assert status_line({"state": "working"}) == "working"


def test_parts_text_puts_other_parts_on_lines_of_their_own() -> None:
    parts = [
        {"kind": "text", "text": "see "},
        {"kind": "text", "text": "this:"},
        {"kind": "data", "data": {"k": "v"}},
        {"kind": "file", "file": {"name": "a.png", "mimeType": "image/png", "bytes": "AAAA"}},
        {"kind": "file", "file": {"uri": "https://x.test/a.pdf"}},
        {"kind": "text", "text": "end"},
    ]
    assert parts_text(parts) == (
        'see this:\n{"k":"v"}\n[file a.png, image/png, 3 bytes]\n[file https://x.test/a.pdf]\nend'
    )
    assert parts_text(parts, inline=True) == (
        'see this: {"k":"v"} [file a.png, image/png, 3 bytes] [file https://x.test/a.pdf] end'
    )
    long = [{"kind": "data", "data": {"k": "x" * 300}}]
    assert len(parts_text(long, inline=True)) == 200
    assert parts_text(long, inline=True).endswith("x…")


def test_task_lines_show_history_artifacts_and_status() -> None:
    task = {
        **TASK,
        "status": {"state": "completed"},
        "history": [
            {"role": "user", "parts": [{"kind": "text", "text": "hi"}]},
            {"role": "agent", "parts": [{"kind": "text", "text": "Say more."}]},
        ],
        "artifacts": [{"artifactId": "a", "parts": [{"kind": "text", "text": "hi\n"}]}],
    }
    assert task_lines(task) == ["task t1 (context c1)", "hi", "completed"]
    assert task_lines(task, history=True) == [
        "task t1 (context c1)",
        "user: hi",
        "agent: Say more.",
        "hi",
        "completed",
    ]


def test_spinner_redraws_in_place_and_clears_its_line() -> None:
    times = iter([10.0, 10.04, 11.25])
    err = FakeTerminal()
    spinner = Spinner(err, clock=lambda: next(times))
    spinner.draw("working")
    spinner.draw("working")
    spinner.clear()
    spinner.clear()
    assert err.getvalue() == "\r\x1b[2K⠋ working 0.0s\r\x1b[2K⠙ working 1.2s\r\x1b[2K"


def test_spinner_falls_back_to_ascii_frames() -> None:
    class AsciiTerminal(io.StringIO):
        encoding = "ascii"

    err = AsciiTerminal()
    Spinner(err, clock=lambda: 0.0).draw("sending")
    assert err.getvalue() == "\r\x1b[2K| sending 0.0s"


def test_live_spinner_shows_only_at_the_start_of_a_line() -> None:
    out, err = io.StringIO(), FakeTerminal()
    transcript = Transcript(out, live=True, spinner=Spinner(err, clock=lambda: 0.0))
    transcript.tick()
    transcript.show(TASK)
    transcript.show(chunk("partial", append=False))
    transcript.tick()
    transcript.close()
    assert out.getvalue() == "task t1 (context c1)\nsubmitted\npartial\n"
    assert err.getvalue() == "\r\x1b[2K⠋ sending 0.0s\r\x1b[2K"


def test_the_displays_states_are_the_protocols() -> None:
    assert INTERRUPTED == INTERRUPTED_STATES
    assert TURN_ENDS == TERMINAL_STATES | INTERRUPTED_STATES
    assert TERMINAL_STATES - {TaskState.COMPLETED} == UNSUCCESSFUL


def test_a_stream_without_the_task_takes_the_task_line_from_its_first_event() -> None:
    results = [status("working"), chunk("hi", append=False), status("completed", final=True)]
    assert transcript_of(results, snapshot_first=True) == (
        "task t1 (context c1)\nworking\nhi\ncompleted\n"
    )


# An agent's reply that would clear the screen, write the clipboard (OSC 52), retitle the window and
# move the cursor (8-bit CSI, carriage return), with a tab and newlines to keep.
HOSTILE = "a\x1b[2J\x1b]52;c;ZXZpbA==\x07b\x1b]0;title\x9c\tc\x9b1A\x7f\r\nd\x00\n"
CLEANED = "a[2J]52;c;ZXZpbA==b]0;title\tc1A\nd\n"


def test_printable_keeps_text_tab_and_newline_and_drops_every_other_control() -> None:
    assert printable(HOSTILE) == CLEANED
    assert printable("héllo ⠋ wörld\t\n") == "héllo ⠋ wörld\t\n"


def test_json_text_escapes_the_controls_json_lets_through_and_means_the_same() -> None:
    value = {"text": HOSTILE, "n": [1, None]}
    text = json_text(value)
    assert text == (
        '{"text":"a\\u001b[2J\\u001b]52;c;ZXZpbA==\\u0007b\\u001b]0;title\\u009c\\tc\\u009b1A'
        '\\u007f\\r\\nd\\u0000\\n","n":[1,null]}'
    )
    assert orjson.loads(text) == value
    assert json_text({"a": "\x9b"}, indent=True) == '{\n  "a": "\\u009b"\n}'


def test_server_text_is_written_without_control_characters_plain_and_live() -> None:
    task = {**TASK, "id": "t1\x1b[1m", "contextId": "c1\x07"}
    results = [
        task,
        chunk(HOSTILE, append=False),
        status("completed", "done\x1b[5m", final=True),
    ]
    lines = "task t1[1m (context c1)\nsubmitted\n" + CLEANED + "completed: done[5m\n"
    assert transcript_of(results) == lines
    assert transcript_of(results, live=True) == lines


def test_task_lines_are_without_control_characters() -> None:
    task = {
        **TASK,
        "status": {"state": "failed\x1b[31m"},
        "history": [{"role": "user\x07", "parts": [{"kind": "text", "text": HOSTILE}]}],
        "artifacts": [{"artifactId": "a", "parts": [{"kind": "text", "text": HOSTILE}]}],
    }
    assert task_lines(task, history=True) == [
        "task t1 (context c1)",
        f"user: {CLEANED}",
        CLEANED.removesuffix("\n"),
        "failed[31m",
    ]


def test_spinner_label_is_without_control_characters() -> None:
    err = FakeTerminal()
    Spinner(err, clock=lambda: 0.0).draw("work\x1b]0;x\x07ing")
    assert err.getvalue() == "\r\x1b[2K⠋ work]0;xing 0.0s"


@pytest.mark.parametrize(
    ("result", "task", "reason"),
    [
        (TASK, True, None),
        ({"kind": "message", "parts": "x"}, False, None),
        ("done", False, None),
        ({"kind": ["task"]}, False, None),
        ({**TASK, "artifacts": None, "history": None}, True, None),
        (["t1"], True, '["t1"], not a task'),
        ({**TASK, "id": 5}, True, "a task whose id is 5, not a string"),
        ({**TASK, "status": "done"}, True, 'a task whose status is "done", not an object'),
        ({**TASK, "status": None}, False, "a task whose status is null, not an object"),
        ({**TASK, "artifacts": {"a": 1}}, True, 'a task whose artifacts is {"a":1}, not an array'),
        ({"kind": "task", "status": {}}, False, "a task with no id"),
        (
            {**status("working"), "taskId": 7},
            False,
            "a status-update whose taskId is 7, not a string",
        ),
        (
            {**status("working"), "status": "x" * 300},
            False,
            'a status-update whose status is "' + "x" * 198 + "…, not an object",
        ),
        (
            {**chunk("x", append=False), "artifact": []},
            False,
            "an artifact-update whose artifact is [], not an object",
        ),
    ],
)
def test_unreadable_names_the_field_a_result_lacks_or_has_of_another_type(
    result: Any, task: bool, reason: str | None
) -> None:
    assert unreadable(result, task=task) == reason


def listed(task_id: str, state: str, updated: str | None = None) -> dict[str, Any]:
    """A task as ListTasks returns it (1.0), in the shape `task list` reads it (0.2.5's)."""
    status = {"state": state, **({"timestamp": updated} if updated else {})}
    task: dict[str, Any] = task_from_v1({"id": task_id, "contextId": "ctx-1", "status": status})
    return task


def test_task_list_prints_a_table_then_the_total() -> None:
    tasks = [
        listed("task-3", "TASK_STATE_INPUT_REQUIRED", "2025-06-01T12:00:03.120Z"),
        listed("task-22", "TASK_STATE_COMPLETED", "2025-06-01T12:00:02.001Z"),
        listed("t1", "TASK_STATE_UNSPECIFIED"),
    ]
    assert list_lines(tasks, 3, None) == [
        "ID       STATE           CONTEXT  UPDATED",
        "task-3   input-required  ctx-1    2025-06-01T12:00:03.120Z",
        "task-22  completed       ctx-1    2025-06-01T12:00:02.001Z",
        "t1       unknown         ctx-1    -",
        "3 tasks",
    ]


def test_task_list_names_the_command_of_the_next_page() -> None:
    tasks = [listed("t1", "TASK_STATE_FAILED", "2025-06-01T12:00:03.120Z")]
    follow = "a2a-gateway task list --limit 1 --page-token tok1"
    assert list_lines(tasks, 2, follow) == [
        "ID  STATE   CONTEXT  UPDATED",
        "t1  failed  ctx-1    2025-06-01T12:00:03.120Z",
        "1 of 2 tasks; next page: a2a-gateway task list --limit 1 --page-token tok1",
    ]
    # The last page; a server that does not count; nothing at all.
    assert list_lines(tasks, 2, None)[-1] == "1 of 2 tasks"
    assert list_lines(tasks, None, None)[-1] == "1 task"
    assert list_lines([], 0, None) == ["0 tasks"]


def test_task_list_prints_no_control_character_from_the_server() -> None:
    task = listed("t\x1b[2J1", "TASK_STATE_\x9bWORKING", "now\x07")
    assert list_lines([task], 1, "a2a-gateway task list --page-token \x1b]0;x\x07") == [
        "ID     STATE    CONTEXT  UPDATED",
        "t[2J1  working  ctx-1    now",
        "1 task; next page: a2a-gateway task list --page-token ]0;x",
    ]
