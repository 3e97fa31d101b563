"""The names the task workflow, its workers and the gateway share: workflow ids, task queues,
activity names, search attributes."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

RUN_AGENT = "run_agent"
# A turn the agent says is quick, run as a local activity inside the workflow task that starts it.
RUN_QUICK_TURN = "run_quick_turn"
PUBLISH_EVENT = "publish_event"
# Tell the worker running a task's turn to cancel it (over Redis): an operator's cancel, at once.
REQUEST_CANCEL = "request_cancel"

# Custom search attributes (registered on the dev server by `a2a-gateway dev` and the test fixtures).
CONTEXT_ID_ATTRIBUTE = SearchAttributeKey.for_keyword("A2AContextId")
AGENT_ATTRIBUTE = SearchAttributeKey.for_keyword("A2AAgent")
STATE_ATTRIBUTE = SearchAttributeKey.for_keyword("A2AState")
SEARCH_ATTRIBUTES = (CONTEXT_ID_ATTRIBUTE, AGENT_ATTRIBUTE, STATE_ATTRIBUTE)


def workflow_id_for(task_id: str) -> str:
    return task_id


def task_queue_for(agent: str) -> str:
    return f"a2a-agent-{agent}"
