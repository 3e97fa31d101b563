"""A task's event log as clients see it: reads of the log (`log`), the process's one pub/sub
connection (`hub`), feeds that give each entry once and in order (`feed`), the stream caps and their
metrics (`limits`), opening a stream (`streams`), the two views of an entry (`renderers`), and the
responses that write them: SSE (`sse`, `batches`), the browser route (`browser`) and the `/ws` feed
(`ws`, `outbox`).

Imports `protocol`, `config`, `gateway.settings`, `gateway.access`, `gateway.metrics` and
`gateway.responses`. The workflow's state of a task Redis has lost reaches it only as a callable,
handed in by the wiring.
"""
