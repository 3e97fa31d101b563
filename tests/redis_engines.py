"""Real Redis topologies on loopback for the scale-out tests: a Redis Cluster (masters, and replicas
that take over when a master dies) and a primary with a replica watched by Sentinel. Made of the
`redis-server` on PATH (or valkey's, as `gateway.devstack.processes.redis_binary` finds one), joined
with CLUSTER / REPLICAOF commands rather than `redis-cli`, so valkey's server alone is enough."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import redis

from gateway.devstack.processes import ManagedProcess, free_port, redis_binary

HOST = "127.0.0.1"
SLOTS = 16384
# Milliseconds without an answer before the cluster (or a sentinel) calls a node down: a failover in
# the tests takes a few seconds.
NODE_TIMEOUT_MS = 1000


@dataclass
class Node:
    port: int
    process: ManagedProcess
    # A cluster node's bus port.
    bus: int | None = None

    def client(self) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, socket_timeout=5)

    def command(self, *args: str | int) -> Any:
        """A command's reply, as redis-py parses it."""
        with self.client() as client:
            return client.execute_command(*args)

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"


def _start(directory: Path, port: int, *extra: str) -> Node:
    directory.mkdir(parents=True, exist_ok=True)
    args = [
        redis_binary(),
        "--bind", HOST,
        "--port", str(port),
        "--save", "",
        "--appendonly", "no",
        "--dir", str(directory),
        "--repl-diskless-sync-delay", "0",
        *extra,
    ]  # fmt: skip
    with (directory / "server.log").open("ab") as log:
        process = ManagedProcess(f"Redis {port}", args, log=log)
    process.wait_for_port(HOST, port)
    return Node(port, process)


def _synced(replica: Node) -> bool:
    with replica.client() as client:
        info: dict[str, Any] = client.info("replication")
    return bool(info["master_link_status"] == "up")


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError):
            if check():
                return
        time.sleep(0.1)
    raise TimeoutError(f"waited {seconds} s for {what}")


@dataclass
class RedisClusterNodes:
    masters: list[Node]
    replicas: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        """A seed node's URL, as REDIS_URL names it with A2A_REDIS_CLUSTER=true."""
        return f"redis://{self.masters[0].address}/0"

    def nodes(self) -> list[Node]:
        return [*self.masters, *self.replicas]

    def master_of(self, key: str) -> Node:
        """The node serving `key`'s slot now."""
        for node in self.nodes():
            if not node.process.running():
                continue
            with contextlib.suppress(redis.RedisError):
                slot = int(node.command("CLUSTER", "KEYSLOT", key))
                for start, end, primary, *_ in node.command("CLUSTER", "SLOTS"):
                    if start <= slot <= end:
                        port = int(primary[1])
                        return next(n for n in self.nodes() if n.port == port)
        raise LookupError(f"no live node serves {key}")

    def healthy(self) -> bool:
        """Every live node sees the cluster as ok."""
        for node in self.nodes():
            if node.process.running():
                info = node.command("CLUSTER", "INFO").decode()
                if "cluster_state:ok" not in info:
                    return False
        return True

    def stop(self) -> None:
        for node in self.nodes():
            node.process.stop()


@contextlib.contextmanager
def redis_cluster(
    directory: Path, masters: int = 3, replicas: int = 0
) -> Iterator[RedisClusterNodes]:
    """A cluster of `masters` masters sharing the slots evenly, each with `replicas` replicas."""
    cluster_args = (
        "--cluster-enabled", "yes",
        "--cluster-config-file", "nodes.conf",
        "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
    )  # fmt: skip
    nodes = RedisClusterNodes([])
    try:
        for index in range(masters * (1 + replicas)):
            port = free_port(HOST)
            # The cluster bus on a free port of its own (its default, port + 10000, may not exist).
            bus = free_port(HOST)
            node = _start(directory / str(port), port, *cluster_args, "--cluster-port", str(bus))
            node.bus = bus
            (nodes.masters if index < masters else nodes.replicas).append(node)
        share = SLOTS // masters
        for index, master in enumerate(nodes.masters):
            last = SLOTS - 1 if index == masters - 1 else (index + 1) * share - 1
            master.command("CLUSTER", "ADDSLOTSRANGE", index * share, last)
        for node in nodes.nodes()[1:]:
            assert node.bus is not None
            nodes.masters[0].command("CLUSTER", "MEET", HOST, node.port, node.bus)
        count = len(nodes.nodes())
        wait_until(
            lambda: all(
                len(n.command("CLUSTER", "NODES").decode().splitlines()) == count
                for n in nodes.nodes()
            ),
            30,
            "every cluster node to know the others",
        )
        for index, replica in enumerate(nodes.replicas):
            master = nodes.masters[index % masters]
            master_id = master.command("CLUSTER", "MYID").decode()
            replica.command("CLUSTER", "REPLICATE", master_id)
        wait_until(nodes.healthy, 30, "the cluster's state to be ok")
        for replica in nodes.replicas:
            wait_until(
                partial(_synced, replica),
                30,
                f"replica {replica.address} to sync",
            )
        yield nodes
    finally:
        nodes.stop()


@dataclass
class SentinelNodes:
    primary: Node
    replica: Node
    sentinels: list[Node]
    name: str

    @property
    def sentinel_list(self) -> str:
        """REDIS_SENTINELS."""
        return ",".join(s.address for s in self.sentinels)

    def current_primary(self) -> int:
        """The port the sentinels name as the primary now."""
        reply = self.sentinels[0].command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
        return int(reply[1])


@contextlib.contextmanager
def redis_sentinel(
    directory: Path, name: str = "a2a", sentinels: int = 3
) -> Iterator[SentinelNodes]:
    """A primary, its replica, and `sentinels` sentinels watching them (quorum: a majority)."""
    started: list[Node] = []
    try:
        primary = _start(directory / "primary", free_port(HOST))
        started.append(primary)
        port = free_port(HOST)
        replica = _start(directory / "replica", port, "--replicaof", HOST, str(primary.port))
        started.append(replica)
        wait_until(
            partial(_synced, replica),
            30,
            "the replica to sync",
        )
        watchers = []
        quorum = sentinels // 2 + 1
        for index in range(sentinels):
            port = free_port(HOST)
            config = directory / f"sentinel-{index}" / "sentinel.conf"
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text(
                f"port {port}\nbind {HOST}\n"
                f"sentinel monitor {name} {HOST} {primary.port} {quorum}\n"
                f"sentinel down-after-milliseconds {name} {NODE_TIMEOUT_MS}\n"
                f"sentinel failover-timeout {name} 5000\n"
                f"sentinel parallel-syncs {name} 1\n"
            )
            with (config.parent / "server.log").open("ab") as log:
                process = ManagedProcess(
                    f"Sentinel {port}", [redis_binary(), str(config), "--sentinel"], log=log
                )
            process.wait_for_port(HOST, port)
            node = Node(port, process)
            watchers.append(node)
            started.append(node)
        nodes = SentinelNodes(primary, replica, watchers, name)
        wait_until(
            lambda: all(
                int(s.command("SENTINEL", "MASTER", name)[b"num-other-sentinels"]) == sentinels - 1
                for s in watchers
            ),
            30,
            "the sentinels to find each other",
        )
        yield nodes
    finally:
        for node in reversed(started):
            node.process.stop()
