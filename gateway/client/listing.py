"""`a2a-gateway task list`: the caller's tasks, newest status first, through A2A 1.0's `ListTasks` (0.2.5
has no listing), printed as a table:

    ID      STATE           CONTEXT   UPDATED
    <id>    input-required  <id>      2025-06-01T12:00:03.120Z
    2 of 3 tasks; next page: a2a-gateway task list --limit 2 --page-token <token>

States are spelt as `send` and `task get` print them (0.2.5's); the last line gives the total and, when
there are more, the command that prints the next page."""

from __future__ import annotations

import argparse
from typing import Any

import httpx

from gateway.client.commands import check, client_for, command_line, run_client
from gateway.client.display import json_text, printable
from gateway.client.rpc import CALL_TIMEOUT, TransportError
from gateway.client.v1 import V1, state_filter, task_from_v1

METHOD = "ListTasks"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
HEADER = ("ID", "STATE", "CONTEXT", "UPDATED")


def task_list(args: argparse.Namespace) -> int:
    return run_client(args, lambda endpoint: _list(args, endpoint))


async def _list(args: argparse.Namespace, endpoint: str) -> int:
    async with httpx.AsyncClient(timeout=CALL_TIMEOUT) as http:
        client = client_for(http, args, endpoint, version=V1)
        result = await client.call(METHOD, list_params(args))
    if not isinstance(result, dict) or not isinstance(result.get("tasks"), list):
        raise TransportError(f"not an A2A answer from {client.url}: {METHOD} returned no tasks")
    tasks = [task_from_v1(task) for task in result["tasks"]]
    for task in tasks:
        check(client, METHOD, task, task=True)
    if args.json:
        print(json_text(result, indent=True))
        return 0
    total = result.get("totalSize")
    token = result.get("nextPageToken")
    follow = command_line(args, *next_page(args, token)) if token else None
    print("\n".join(list_lines(tasks, total if isinstance(total, int) else None, follow)))
    return 0


def list_params(args: argparse.Namespace) -> dict[str, Any]:
    """ListTasks' params: the filters given, the page size, the page token."""
    params: dict[str, Any] = {"pageSize": args.limit}
    if args.context_id:
        params["contextId"] = args.context_id
    if args.state:
        params["status"] = state_filter(args.state)
    if args.page_token:
        params["pageToken"] = args.page_token
    return params


def next_page(args: argparse.Namespace, token: Any) -> list[str]:
    """The words of the command printing the page after this one: this one's filters, the token."""
    words = ["task", "list"]
    if args.context_id:
        words += ["--context-id", args.context_id]
    if args.state:
        words += ["--state", args.state]
    if args.limit != DEFAULT_LIMIT:
        words += ["--limit", str(args.limit)]
    return [*words, "--page-token", str(token)]


def list_lines(tasks: list[dict[str, Any]], total: int | None, follow: str | None) -> list[str]:
    """The table of `tasks` (0.2.5-shaped, as `task_from_v1` gives them) and the line of the total:
    `N tasks`, or `N of TOTAL tasks` with, when there is a next page, the command `follow`."""
    rows: list[tuple[str, ...]] = [HEADER]
    for task in tasks:
        status = task["status"]
        updated = status.get("timestamp")
        cells = (task.get("id"), status.get("state"), task.get("contextId"), updated or "-")
        rows.append(tuple(printable(str(cell)) for cell in cells))
    lines = _table(rows) if tasks else []
    total = len(tasks) if total is None else total
    noun = "task" if total == 1 else "tasks"
    counted = f"{total} {noun}" if total == len(tasks) else f"{len(tasks)} of {total} {noun}"
    return [*lines, f"{counted}; next page: {printable(follow)}" if follow else counted]


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    """`rows` in columns two spaces apart, each as wide as its widest cell (the last one unpadded)."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]
