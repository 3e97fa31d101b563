"""What an operator configures, shared by the gateway, the workers and the dev launcher: the agents file
(`agents`: agents, routing, auth), logging and tracing from the standard `OTEL_*` variables
(`telemetry`), and the webhook address policy (`webhook_policy`).

Imports `protocol` only. Reading the environment or a file happens here or in an entry point, never in
`protocol`.
"""
