"""The `workflow.patched` names of `TaskWorkflow`: each marks a change of the commands a workflow
issues, so that workflows that ran before it replay as they ran (tests/histories holds recorded
ones). Never reuse or rename one."""

# Workflows that ran before an operator's cancel ended a turn `canceled` (not `failed`) replay as they ran.
OPERATOR_CANCEL_PATCH = "operator-cancel-is-canceled"
# Workflows that ran every turn as an activity (and indexed every `working`) replay as they ran.
QUICK_TURNS_PATCH = "quick-turns-as-local-activities"
# Workflows whose operator's cancel reached the turn only through its activity replay as they ran.
OPERATOR_CANCEL_OVER_REDIS_PATCH = "operator-cancel-over-redis"
# Workflows that completed whatever their task's end (failed, canceled) replay as they ran; newer
# ones end Failed (Canceled for an operator's cancel) when their task did not succeed.
VISIBLE_ENDS_PATCH = "unsuccessful-tasks-end-their-workflows-failed"
