"""Every Redis key and channel name the gateway and workers share.

The task id sits in braces so a task's keys share one hash slot in Redis Cluster: the worker writes the
snapshot and the stream in one Lua script, which Cluster allows only within a slot.
"""

from __future__ import annotations

PREFIX = "a2a"


def task_snapshot_key(task_id: str) -> str:
    """The latest Task JSON (a cache of the workflow's state)."""
    return f"{PREFIX}:task:{{{task_id}}}"


def task_events_key(task_id: str) -> str:
    """The task's event log: a Redis stream whose entry ids are the SSE event ids."""
    return f"{PREFIX}:task:{{{task_id}}}:events"


def task_channel(task_id: str) -> str:
    """Pub/sub channel that wakes gateway replicas when an entry is appended; the payload is its id."""
    return f"{PREFIX}:task:{{{task_id}}}:wake"
