"""Deterministic Temporal code: the task workflow (`task`), the push-notification workflow
(`push_workflow`) and their inputs (`payloads`).

Imports `protocol` only. Import from the modules themselves: the workflow sandbox imports this package
again for every workflow it runs, so it loads nothing on its own.
"""
