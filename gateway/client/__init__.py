"""The `send` and `task` commands: a general A2A v0.2.5 command-line client (`commands`), its JSON-RPC
and SSE calls over httpx (`rpc`) and what it prints (`display`).

Imports nothing of ours: it talks to any A2A server, this gateway being one.
"""
