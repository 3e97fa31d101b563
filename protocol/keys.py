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
    """Pub/sub channel that wakes gateway replicas when an entry is appended.

    The payload is `<entry id> <event JSON>`, or the bare entry id when the event is too large to send
    twice; a subscriber then reads the entry from the stream.
    """
    return f"{PREFIX}:task:{{{task_id}}}:wake"


def _scope(principal: str | None) -> str:
    """A prefix that keeps principals' keys apart; length-prefixed, so no principal name and id can
    spell another's."""
    return f"{len(principal)}:{principal}/" if principal else ""


def message_task_key(message_id: str, principal: str | None = None) -> str:
    """The task a message went to (the one it started, or the one it continued): a send that repeats
    the message id gets that task, and its message is delivered once; a retried stream carrying
    `Last-Event-ID` resumes that task's stream. Scoped by the caller, so one principal cannot reach
    another's task by reusing its message id."""
    return f"{PREFIX}:message:{{{_scope(principal)}{message_id}}}:task"


def context_tasks_key(context_id: str, principal: str | None = None) -> str:
    """The ids of a context's tasks, oldest first: what a new task of the context may read of earlier
    turns. Scoped by the tasks' owner: a principal reusing another's contextId reads none of it."""
    return f"{PREFIX}:context:{{{_scope(principal)}{context_id}}}:tasks"


def task_content_key(task_id: str, digest: str) -> str:
    """One piece of the task's content (a message, an artifact, its metadata), by the SHA-256 of its
    JSON: what Temporal's payloads refer to (`protocol.records`)."""
    return f"{PREFIX}:task:{{{task_id}}}:content:{digest}"


def task_push_key(task_id: str) -> str:
    """A hash of the task's push notification configs: config id -> stored config JSON."""
    return f"{PREFIX}:task:{{{task_id}}}:push"


def task_ended_key(task_id: str) -> str:
    """Set by the event that ends the task (a terminal state): a final event published `once` is
    refused after it, so a task ends exactly once in its log whoever ends it first."""
    return f"{PREFIX}:task:{{{task_id}}}:ended"


def task_published_key(task_id: str) -> str:
    """The tokens of the task's last publishes with the entry each wrote, newest first: a publish sent
    again (its reply lost) finds its token and writes nothing twice (`workers.publisher`)."""
    return f"{PREFIX}:task:{{{task_id}}}:published"


def task_cancel_key(task_id: str) -> str:
    """Set by a cancel request: a turn that starts after it (or whose worker missed the cancel
    channel's message) ends canceled at once."""
    return f"{PREFIX}:task:{{{task_id}}}:cancel"


# Cancel requests (the task id) for the running turns of every worker: the fast path to the agent;
# the workflow's cancel of the turn's activity is the durable backstop.
CANCEL_CHANNEL = f"{PREFIX}:cancel"

# A cancel request, as the gateway (tasks/cancel) and a workflow (an operator's cancel) make one: the
# task's marker (`task_cancel_key`) for a turn not yet started or a worker that missed the message,
# then the message on `CANCEL_CHANNEL`. One script, one round trip, one slot (a Redis Cluster's
# pipelines refuse PUBLISH). KEYS: the marker. ARGV: the channel, the task id, the marker's TTL
# seconds. Returns 1 when this was the task's first request.
REQUEST_CANCEL_SCRIPT = """
local first = redis.call("SET", KEYS[1], "1", "EX", ARGV[3], "NX")
redis.call("PUBLISH", ARGV[1], ARGV[2])
if first then
  return 1
end
return 0
"""


def task_owner_key(task_id: str) -> str:
    """The principal that created the task (only when the gateway authenticates callers)."""
    return f"{PREFIX}:task:{{{task_id}}}:owner"


def rate_limit_key(principal: str) -> str:
    """A principal's request budget (GCRA: the theoretical arrival time), shared by every replica."""
    return f"{PREFIX}:rate:{{{principal}}}"


def _owner_tasks_prefix(owner: str | None) -> str:
    """The common start of an owner's task-index keys: the braces hold the owner's scope, so one Lua
    script may update all of them (one hash slot). The shared index (no owner) uses `-`, which no
    scope spells: Redis Cluster hashes the whole key when the braces are empty."""
    return f"{PREFIX}:tasks:{{{_scope(owner) or '-'}}}"


def owner_tasks_key(owner: str | None = None) -> str:
    """A sorted set of every task of `owner`: member the task id, score its status timestamp (epoch
    milliseconds). Every gateway caller without authentication shares the `None` owner's index."""
    return f"{_owner_tasks_prefix(owner)}:all"


def owner_state_tasks_key(state: str, owner: str | None = None) -> str:
    """The owner's tasks whose latest status is `state` (the 0.2.5 value, e.g. `working`), scored like
    `owner_tasks_key`."""
    return f"{_owner_tasks_prefix(owner)}:state:{state}"


def owner_context_tasks_key(context_id: str, owner: str | None = None) -> str:
    """The owner's tasks of one context, scored like `owner_tasks_key`."""
    return f"{_owner_tasks_prefix(owner)}:context:{context_id}"
