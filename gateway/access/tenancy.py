"""Which tasks a caller may see. With tenancy (auth on), a task answers only to the principal that
created it: anyone else gets -32001, as for a task that does not exist. Without, anyone sees any task."""

from __future__ import annotations

from gateway.access.auth import Principal
from gateway.tasks.temporal import TemporalTasks, task_not_found


class Tenancy:
    def __init__(self, tasks: TemporalTasks, *, enabled: bool) -> None:
        self._tasks = tasks
        self.enabled = enabled

    def scope(self, principal: Principal) -> str | None:
        """What the caller's tasks, stream leases and message ids are kept under: its principal, with
        tenancy; nothing without."""
        return principal.id if self.enabled else None

    async def authorize(self, task_id: str, principal: Principal) -> None:
        """-32001 unless `principal` may see the task."""
        if self.enabled and await self._tasks.owner(task_id) != principal.id:
            raise task_not_found(task_id)
