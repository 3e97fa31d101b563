"""The tasks' engines as the gateway uses them: every Temporal call and the one mapping of Temporal's
errors to A2A errors (`temporal`), the end of a blocking send's turn (`turns`), snapshots, owners and
stream message ids in Redis (`store`, over the pipelined reader of `pipelined`), and the registry of
push notification configs (`push_configs`).

Imports `protocol`, `config`, `workflows` and `gateway.settings`. The task's event log reaches it only
as the `turns.TurnLog` protocol, handed in by the wiring.
"""
