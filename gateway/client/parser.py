"""The command line of `a2a-gateway send` and `a2a-gateway task`: their options, help and exit codes."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import orjson

from gateway.client.commands import send, task_cancel, task_follow, task_get
from gateway.client.listing import DEFAULT_LIMIT, MAX_LIMIT, task_list
from gateway.client.rpc import DEFAULT_URL

SEND_DESCRIPTION = """\
Send TEXT to an A2A agent and show its task: the task's id, each status change and the reply.

In a terminal the reply appears as the agent writes it, with a progress line on stderr. Piped, the
output is plain lines: "task <id> (context <id>)", then a line per status change ("working",
"working: tool add {...}"), then the reply's text once, then the final state ("completed",
"failed: <why>", "input-required: <what the agent asks>"). How to go on (reply to an
input-required task, follow a task still running) and errors go to stderr.

It speaks A2A 1.0 (SendStreamingMessage, SendMessage) when the agent card at
<endpoint>/.well-known/agent-card.json (or at the server's root) lists a JSONRPC 1.0 interface, else
0.2.5 (message/stream, message/send; card: .well-known/agent.json), and prints the same either way.
It streams unless the agent card says capabilities.streaming is not true, or --no-stream is given."""
LIST_DESCRIPTION = """List your tasks, newest status first (A2A 1.0 ListTasks): a table of id, state, context id and last
update, then the total and, when there are more, the command that prints the next page. --json prints
the ListTasks result as the server sent it."""
EXIT_CODES = """\
exit codes:
  0    the task completed, waits for input (input-required, auth-required) or is still running
  1    the task failed, was rejected or canceled (task cancel: the task is not canceled)
  2    the server answered with a JSON-RPC error, printed as "error <code>: <message>"; bad usage
  3    no A2A answer: the server is unreachable, answers too late (in 30 s; send --no-stream: in
       600 s), answered an HTTP error or not A2A, or cut the stream short
  130  interrupted (Ctrl-C); the task goes on"""


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not JSON: {err}") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("not a JSON object")
    return value


def _page_size(text: str) -> int:
    try:
        size = int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from err
    if not 1 <= size <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_LIMIT}, got {size}")
    return size


def add_client_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    connection = _connection_options()
    _add_send(commands, connection)
    task_cmd = commands.add_parser("task", help="list, look at, follow or cancel tasks")
    task_commands = task_cmd.add_subparsers(dest="task_command", required=True)
    get_cmd = _add_task_command(
        task_commands,
        connection,
        "get",
        task_get,
        "print a task (tasks/get)",
        "Print a task as send does: its task line, its reply's text, its state.",
    )
    get_cmd.add_argument(
        "--history-length",
        type=int,
        metavar="N",
        help='also print its last N messages, as lines "<role>: <text>"',
    )
    _add_task_command(
        task_commands,
        connection,
        "follow",
        task_follow,
        "follow a task to the end of its turn (tasks/resubscribe)",
        "Print a task's events as send does, from now to the end of its turn (a finished task: its "
        "state); a stream that drops is resumed where it broke (Last-Event-ID).",
    )
    _add_task_command(
        task_commands,
        connection,
        "cancel",
        task_cancel,
        "cancel a task (tasks/cancel)",
        "Cancel a task and print it as task get does.",
    )
    _add_list(task_commands, connection)


def _connection_options() -> argparse.ArgumentParser:
    """The options every client command takes: where the server is and how to authenticate."""
    connection = argparse.ArgumentParser(add_help=False)
    connection.add_argument(
        "--url",
        help=f"the server's JSON-RPC endpoint, any A2A v0.2.5 or 1.0 server (A2A_URL; default {DEFAULT_URL})",
    )
    connection.add_argument(
        "--agent", metavar="NAME", help="this gateway's agent NAME: the endpoint <url>/agents/NAME"
    )
    connection.add_argument(
        "--api-key", metavar="KEY", help="sent in the X-API-Key header (A2A_API_KEY)"
    )
    connection.add_argument(
        "--api-key-header",
        metavar="HEADER",
        help="the API key's header (A2A_API_KEY_HEADER; default X-API-Key)",
    )
    connection.add_argument("--token", help="sent as Authorization: Bearer TOKEN (A2A_TOKEN)")
    connection.add_argument(
        "--json",
        action="store_true",
        help="print the Task (task list: the listing) as JSON, nothing else",
    )
    return connection


def _add_send(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    connection: argparse.ArgumentParser,
) -> None:
    send_cmd = _add_command(
        commands,
        connection,
        "send",
        send,
        "send a message to an A2A agent and show its task as it runs",
        SEND_DESCRIPTION,
    )
    send_cmd.add_argument(
        "text", metavar="TEXT", help='the message\'s text ("-": read it from stdin)'
    )
    send_cmd.add_argument(
        "--no-stream",
        action="store_true",
        help="message/send: wait for the turn's end, then print it",
    )
    send_cmd.add_argument("--context-id", metavar="ID", help="continue this conversation")
    send_cmd.add_argument(
        "--task-id", metavar="ID", help="reply to this task (one that is input-required)"
    )
    send_cmd.add_argument(
        "--metadata",
        type=_json_object,
        metavar="JSON",
        help="the message's metadata, a JSON object",
    )


def _add_list(
    task_commands: argparse._SubParsersAction[argparse.ArgumentParser],
    connection: argparse.ArgumentParser,
) -> None:
    list_cmd = _add_command(
        task_commands,
        connection,
        "list",
        task_list,
        "list your tasks (ListTasks)",
        LIST_DESCRIPTION,
    )
    list_cmd.add_argument("--context-id", metavar="ID", help="only the tasks of this conversation")
    list_cmd.add_argument(
        "--state",
        metavar="STATE",
        help="only the tasks in this state: completed, input-required, ... (or TASK_STATE_*)",
    )
    list_cmd.add_argument(
        "--limit",
        type=_page_size,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"at most N tasks (1 to {MAX_LIMIT}; default {DEFAULT_LIMIT})",
    )
    list_cmd.add_argument(
        "--page-token", metavar="TOKEN", help="the page the last line of the previous one names"
    )


def _add_task_command(
    task_commands: argparse._SubParsersAction[argparse.ArgumentParser],
    connection: argparse.ArgumentParser,
    name: str,
    run: Callable[[argparse.Namespace], int],
    help: str,
    description: str,
) -> argparse.ArgumentParser:
    command = _add_command(task_commands, connection, name, run, help, description)
    command.add_argument("id", help="the task's id")
    return command


def _add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    connection: argparse.ArgumentParser,
    name: str,
    run: Callable[[argparse.Namespace], int],
    help: str,
    description: str,
) -> argparse.ArgumentParser:
    """A client command: the connection options, its exit codes, `run` to run it."""
    command = commands.add_parser(
        name,
        parents=[connection],
        help=help,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXIT_CODES,
    )
    command.set_defaults(run=run, prog=command.prog)
    return command
