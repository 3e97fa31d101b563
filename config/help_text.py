"""What `a2a-gateway serve --help` and `a2a-worker --help` say of the environment both read."""

from __future__ import annotations

CONNECTION_ENVIRONMENT = """\
  TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE      Temporal (default 127.0.0.1:7233, default); with
  TEMPORAL_API_KEY, TEMPORAL_TLS_*,         TLS, mTLS, an API key or a profile of Temporal's TOML
  TEMPORAL_PROFILE                          configuration
  REDIS_URL                                 Redis (default redis://127.0.0.1:6390/0; rediss:// for TLS)
  A2A_REDIS_CLUSTER, REDIS_SENTINELS,       a Redis Cluster, or the primary Sentinel names
  A2A_REDIS_SENTINEL_MASTER
"""
