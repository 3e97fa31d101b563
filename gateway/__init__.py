"""The `a2a-gateway` command's three programs, each a sub-package or module of its own:

- the HTTP server (`app` wires `rpc`, `tasks`, `streaming`, `access`, `ui`, `cards`; `server` runs it);
- `client`: a general A2A command-line client (`send`, `task`), which imports nothing of the server;
- `devstack`: the dev launcher (`dev`), which starts Temporal, Redis, the workers and a gateway process.

`cli` parses the command line and imports only the program it runs. The import direction of every
sub-package is in docs/architecture.md; `tests/test_layout.py` holds the code to it.
"""
