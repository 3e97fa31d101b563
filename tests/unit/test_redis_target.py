"""Where Redis is (`config.redis_clients.RedisTarget`): settings that contradict each other, and what
the connections of each shape are given (no I/O: pools are built, not connected)."""

from __future__ import annotations

import pytest

from config.redis_clients import RedisConfigError, RedisTarget


@pytest.mark.parametrize(
    ("cluster", "sentinels", "master", "message"),
    [
        (
            False,
            ["127.0.0.1:26379"],
            None,
            "REDIS_SENTINELS is set: A2A_REDIS_SENTINEL_MASTER must name the primary",
        ),
        (
            False,
            [],
            "mymaster",
            "A2A_REDIS_SENTINEL_MASTER is set: REDIS_SENTINELS must list the sentinels",
        ),
        (
            True,
            ["127.0.0.1:26379"],
            "mymaster",
            "A2A_REDIS_CLUSTER and REDIS_SENTINELS exclude each other",
        ),
        (
            False,
            ["sentinel-without-port"],
            "m",
            "REDIS_SENTINELS: 'sentinel-without-port' is not host:port",
        ),
    ],
)
def test_contradictions_are_refused_naming_the_settings(
    cluster: bool, sentinels: list[str], master: str | None, message: str
) -> None:
    with pytest.raises(RedisConfigError) as refused:
        RedisTarget.of(
            "redis://127.0.0.1:6390/0", cluster=cluster, sentinels=sentinels, sentinel_master=master
        )
    assert str(refused.value) == message


async def test_a_sentinel_primarys_own_connection_keeps_the_urls_credentials_and_database() -> None:
    target = RedisTarget.of(
        "redis://app:s3cret@ignored-host:1/3",
        cluster=False,
        sentinels=["10.0.0.1:26379", "[::1]:26380"],
        sentinel_master="mymaster",
    )
    assert target.sentinels == (("10.0.0.1", 26379), ("::1", 26380))
    assert target.describe() == "Redis primary 'mymaster' of the sentinels 10.0.0.1:26379,::1:26380"
    pool = await target.dedicated_pool(None, protocol=2)
    options = pool.connection_kwargs
    assert (options["username"], options["password"], options["db"]) == ("app", "s3cret", 3)
    assert (options["protocol"], options["socket_timeout"]) == (2, None)
    assert "host" not in options


async def test_a_cluster_node_pool_takes_the_urls_credentials_on_the_node_given() -> None:
    target = RedisTarget.of(
        "redis://app:s3cret@seed:7000/0", cluster=True, sentinels=[], sentinel_master=None
    )
    assert target.describe() == "Redis Cluster (seed seed:7000)"
    pool = await target.node_pool("10.0.0.7", 7001, protocol=2)
    options = pool.connection_kwargs
    assert (options["host"], options["port"], options["password"]) == ("10.0.0.7", 7001, "s3cret")
    with pytest.raises(RedisConfigError):
        await target.dedicated_pool(None)
