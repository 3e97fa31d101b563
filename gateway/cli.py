"""`a2a-gateway serve` runs the gateway; `a2a-gateway dev` runs the whole stack on loopback;
`a2a-gateway send` and `a2a-gateway task` talk to any A2A v0.2.5 server.

The client commands are imported here; `serve` and `dev` name the module that runs them, imported only
when chosen, so that `send` starts without Temporal, uvicorn and the app.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from gateway.client.parser import add_client_commands

SERVE = "gateway.server"
DEV = "gateway.devstack.launcher"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="a2a-gateway", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run the gateway (settings from A2A_GATEWAY_*)")
    serve_cmd.add_argument("--host", help="bind address (A2A_GATEWAY_HOST; default 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, help="port (A2A_GATEWAY_PORT; default 8000)")
    serve_cmd.set_defaults(program=SERVE)
    dev_cmd = commands.add_parser(
        "dev", help="run Temporal, Redis, the gateway and an echo worker on loopback"
    )
    dev_cmd.add_argument("--host", default="127.0.0.1")
    dev_cmd.add_argument("--port", type=int, default=8000, help="gateway port")
    dev_cmd.add_argument("--temporal-port", type=int, default=7233)
    dev_cmd.add_argument("--temporal-ui-port", type=int, default=8233)
    dev_cmd.add_argument("--redis-port", type=int, default=6390, help="port of the embedded Redis")
    dev_cmd.add_argument(
        "--worker-metrics-port",
        type=int,
        default=9464,
        help="the first worker's metrics port, the next one's the port after it (0: none)",
    )
    dev_cmd.add_argument("--data-dir", default=".a2a", help="Temporal's sqlite file and the logs")
    dev_cmd.add_argument(
        "--config", help="the agents file (A2A_CONFIG): a worker runs for each of its agents"
    )
    dev_cmd.set_defaults(program=DEV)
    add_client_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
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
