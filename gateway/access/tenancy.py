"""Which tasks a caller may see. With tenancy (auth on), a task answers only to the principal that
created it: anyone else gets -32001, as for a task that does not exist, and by the same path (no timing
oracle). Without, anyone sees any task."""

from __future__ import annotations

import contextlib
import uuid

from gateway.access.auth import Principal
from gateway.tasks.rejections import task_not_found
from gateway.tasks.temporal import TemporalTasks
from protocol import TaskNotFoundError


class Tenancy:
    def __init__(self, tasks: TemporalTasks, *, enabled: bool) -> None:
        self._tasks = tasks
        self.enabled = enabled

    def scope(self, principal: Principal) -> str | None:
        """What the caller's tasks, stream leases and message ids are kept under: its principal, with
        tenancy; nothing without."""
        return principal.id if self.enabled else None

    async def authorize(self, task_id: str, principal: Principal) -> None:
        """-32001 unless `principal` may see the task.

        A task that does not exist costs a Redis read (the owner, unknown) and a Temporal query (no
        such workflow). Another principal's task costs the same: its owner comes from Redis, then the
        workflow of a task that does not exist (a fresh random id) is asked, and the answer is the
        same -32001. The two are not told apart by how long they take."""
        if not self.enabled:
            return
        owner = await self._tasks.owner(task_id)
        if owner == principal.id:
            return
        with contextlib.suppress(TaskNotFoundError):
            await self._tasks.query_owner(str(uuid.uuid4()))
        raise task_not_found(task_id)
