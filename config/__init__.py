"""What an operator configures, shared by the gateway, the workers and the dev launcher: the agents file
(`agents`: agents, routing, auth), logging and tracing from the standard `OTEL_*` variables
(`telemetry`), the webhook address policy (`webhook_policy`), the Temporal connection from Temporal's
environment configuration (`temporal`), and where Redis is: one server, a cluster or Sentinel's
primary (`redis_clients`).

Imports `protocol` only. Reading the environment or a file happens here or in an entry point, never in
`protocol`.
"""
