"""The activities a task's workflow history records, local (marker) and regular alike."""

from __future__ import annotations

import json
from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client, WorkflowHistory

LOCAL_ACTIVITY_MARKER = "core_local_activity"


@dataclass
class Call:
    type: str
    local: bool
    # The attempt that ended the call (a regular activity: the last one started).
    attempt: int = 0
    failure: Failure | None = None
    canceled: bool = False


def calls(history: WorkflowHistory) -> list[Call]:
    """Every activity call in `history`, in the order scheduled (a local one when it ended)."""
    out: list[Call] = []
    scheduled: dict[int, Call] = {}
    for event in history.events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = call = Call(attrs.activity_type.name, local=False)
            out.append(call)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            scheduled[started.scheduled_event_id].attempt = started.attempt
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            failed = event.activity_task_failed_event_attributes
            scheduled[failed.scheduled_event_id].failure = failed.failure
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
            scheduled[
                event.activity_task_canceled_event_attributes.scheduled_event_id
            ].canceled = True
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes
            if marker.marker_name != LOCAL_ACTIVITY_MARKER:
                continue
            data = json.loads(marker.details["data"].payloads[0].data)
            failure = marker.failure if marker.HasField("failure") else None
            out.append(Call(data["activity_type"], True, data["attempt"], failure))
    return out


async def task_calls(temporal: Client, task_id: str) -> list[Call]:
    return calls(await temporal.get_workflow_handle(task_id).fetch_history())
