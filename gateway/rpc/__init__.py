"""The JSON-RPC endpoint: its router and server span (`endpoint`), the three steps of dispatch with
their codes (`dispatch`: -32700/-32600, -32601, -32602), and one handler per A2A method of an agent
(`methods`, with the checks beyond the params' schema in `checks`).

Imports `protocol`, `config`, `gateway.settings`, `gateway.access`, `gateway.cards`, `gateway.metrics`,
`gateway.responses`, `gateway.streaming` and `gateway.tasks`; nothing imports it but the wiring
(`gateway.runtime`, `gateway.app`).
"""
