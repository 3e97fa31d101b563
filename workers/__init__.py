"""Everything with side effects that Temporal runs: activities, agents, the worker process."""

from workers.activities import TaskActivities
from workers.publisher import EventPublisher
from workers.settings import WorkerSettings
from workers.worker import build_agent, create_worker

__all__ = ["EventPublisher", "TaskActivities", "WorkerSettings", "build_agent", "create_worker"]
