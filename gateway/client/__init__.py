"""The `send` and `task` commands: a general command-line client of A2A v0.2.5 and 1.0 servers
(`commands`, `listing`), its JSON-RPC and SSE calls over httpx (`rpc`), 1.0's shapes turned into 0.2.5's
(`v1`) and what it prints (`display`).

Imports nothing of ours: it talks to any A2A server, this gateway being one.
"""
