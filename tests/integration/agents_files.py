"""Agents files the integration tests write: the echo agent on the session's queue, behind API keys."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def echo_behind_api_keys(task_queue: str, keys: Mapping[str, str]) -> str:
    """The echo agent on `task_queue`; each principal of `keys` (name -> API key) gets in with its key
    in `X-API-Key`."""
    principals = "".join(
        f'[auth.api_keys.{name}]\nkey_sha256 = "{hashlib.sha256(key.encode()).hexdigest()}"\n'
        for name, key in keys.items()
    )
    return f"""
default = "echo"

[agents.echo]
kind = "echo"
task_queue = "{task_queue}"

[auth]
api_key_header = "X-API-Key"
{principals}"""
