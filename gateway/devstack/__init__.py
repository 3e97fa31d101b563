"""The dev launcher behind `a2a-gateway dev` (`launcher`) and the processes it starts: the Temporal dev
server, Redis, workers and a gateway, each a child that dies with it (`processes`).

Imports `config`, `workflows` (the search attributes to register) and `gateway.settings`; never the
server: the gateway runs as a process of its own.
"""
