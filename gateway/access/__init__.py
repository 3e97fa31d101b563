"""Who gets in, and what they may see: authentication by API key or JWT (`auth`), admission of each
request, browser stream and WebSocket (`admission`: auth, the agents a credential may use, its rate),
the rate limiter (`rate_limit`, one Lua script in Redis) and tenancy (`tenancy`: a task answers only to
its creator).

Imports `protocol`, `config`, `gateway.settings`, `gateway.responses` and `gateway.tasks` (the owner of a
task Redis has forgotten comes from its workflow).
"""
