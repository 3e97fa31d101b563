"""`a2a-gateway serve` runs the gateway; `a2a-gateway dev` runs the whole stack on loopback;
`a2a-gateway send` and `a2a-gateway task` talk to any A2A server (0.2.5 or 1.0); `a2a-gateway
temporal ...` is the bundled Temporal CLI.

The client commands are imported here; `serve` and `dev` name the module that runs them, imported only
when chosen, so that `send` starts without Temporal, uvicorn and the app.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from config.help_text import CONNECTION_ENVIRONMENT
from config.version import package_version
from gateway.client.parser import add_client_commands

SERVE = "gateway.server"
DEV = "gateway.devstack.launcher"
TEMPORAL_CLI = "gateway.devstack.temporal_cli"


SERVE_ENVIRONMENT = f"""environment:
{CONNECTION_ENVIRONMENT}\
  A2A_CONFIG                                the agents file (TOML)
  A2A_GATEWAY_*                             every other setting (docs/settings.md)
"""

DEV_ENVIRONMENT = """environment:
  TEMPORAL_ADDRESS (or TEMPORAL_PROFILE)    use this Temporal instead of starting a dev server
  REDIS_URL (or REDIS_SENTINELS)            use this Redis instead of starting one
  A2A_CONFIG                                the agents file, as --config
  A2A_GATEWAY_*, A2A_WORKER_*               passed on to the gateway and the workers
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="a2a-gateway", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser(
        "serve",
        help="run the gateway (settings from A2A_GATEWAY_*)",
        description="Run one gateway process: A2A over JSON-RPC, HTTP+JSON and SSE; tasks run as\n"
        "Temporal workflows, by separate workers (a2a-worker).",
        epilog=SERVE_ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve_cmd.add_argument("--host", help="bind address (A2A_GATEWAY_HOST; default 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, help="port (A2A_GATEWAY_PORT; default 8000)")
    serve_cmd.set_defaults(program=SERVE)
    dev_cmd = commands.add_parser(
        "dev",
        help="run Temporal, Redis, the gateway and an echo worker on loopback",
        description="Run the whole stack on loopback (what `make run` runs): a Temporal dev\n"
        "server with its UI, a Redis, the gateway, and a worker for each agent (the echo\n"
        "agent without an agents file). Ctrl-C stops everything it started.",
        epilog=DEV_ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_dev_options(dev_cmd)
    dev_cmd.set_defaults(program=DEV)
    # Listed for --help; `main` hands everything after `temporal` to the Temporal CLI before argparse.
    commands.add_parser(
        "temporal",
        help="the Temporal CLI installed with this package (temporal ...)",
        description="Run the bundled Temporal CLI with these arguments, e.g. "
        "`a2a-gateway temporal workflow list --query 'A2AState=\"working\"'`.",
        add_help=False,
    )
    add_client_commands(commands)
    return parser


def _add_dev_options(dev_cmd: argparse.ArgumentParser) -> None:
    dev_cmd.add_argument(
        "--host", default="127.0.0.1", help="address every process binds (default 127.0.0.1)"
    )
    dev_cmd.add_argument("--port", type=int, default=8000, help="the gateway's port (default 8000)")
    dev_cmd.add_argument(
        "--temporal-port",
        type=int,
        default=7233,
        help="the Temporal dev server's gRPC port (default 7233)",
    )
    dev_cmd.add_argument(
        "--temporal-ui-port",
        type=int,
        default=8233,
        help="the Temporal Web UI's port (default 8233)",
    )
    dev_cmd.add_argument(
        "--redis-port", type=int, default=6390, help="the embedded Redis's port (default 6390)"
    )
    dev_cmd.add_argument(
        "--worker-metrics-port",
        type=int,
        default=9464,
        help="the first worker's metrics port, the next one's the port after it (0: none; "
        "default 9464)",
    )
    dev_cmd.add_argument(
        "--data-dir",
        default=".a2a",
        help="Temporal's sqlite file, Redis's data and the logs (default .a2a)",
    )
    dev_cmd.add_argument(
        "--config", help="the agents file (A2A_CONFIG): a worker runs for each of its agents"
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["temporal"]:
        # Everything after `temporal` is the Temporal CLI's, options first included (argparse would
        # take `--version` or `--help` for its own).
        args = argparse.Namespace(program=TEMPORAL_CLI, arguments=argv[1:])
    else:
        args = build_parser().parse_args(argv)
    program = getattr(args, "program", None)
    if program is None:
        # The client commands print what they have to say; httpx's request log would only add noise.
        logging.basicConfig(level=logging.WARNING)
        code = args.run(args)
    else:
        code = importlib.import_module(program).main(args)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # temporalio can abort at interpreter exit; leave without running finalizers.
    os._exit(code)
