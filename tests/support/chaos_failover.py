"""Failover chaos: the chaos stack (two of every process) on a 3-master Redis Cluster with one
replica per master, and a master killed with SIGKILL in the middle of a burst.

The cluster's node timeout is 1.5 s, so the killed master's replica is promoted a few
seconds later; the processes find the new master by themselves (redis-py refreshes its slot
map on the errors of a dead node). Then the dead node is started again on its files, as a
supervisor would: it comes back as the replica of the master that replaced it, so a stack
waiting for one replica per acknowledgement (REDIS_WAIT_REPLICAS=1) can acknowledge again
on those partitions. The read models live on a server of their own, not failed over here
(READ_REDIS_WAIT_REPLICAS=0). The fulfilment sweeper looks at orders quiet for 3 s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from redis.crc import key_slot

from app.kernel import keys
from app.kernel.partitions import tag
from tests.support.api_client import base_env, stop_together
from tests.support.chaos import CHAOS_ENV, PARTITIONS, ChaosStack
from tests.support.processes import ProcessGroup
from tests.support.redis_cluster import ClusterNode, RedisCluster, running_cluster
from tests.support.redis_server import running_redis

NODE_TIMEOUT_MS = 1500
GATEWAY = keys.external("gateway", "gate")


@dataclass
class FailoverStack:
    chaos: ChaosStack
    cluster: RedisCluster


def failover_env(cluster_url: str, read_url: str, wait_replicas: int) -> dict[str, str]:
    return base_env(
        cluster_url,
        **CHAOS_ENV,
        READ_REDIS_URL=read_url,
        REDIS_WAIT_REPLICAS=str(wait_replicas),
        REDIS_WAIT_TIMEOUT_MS="1000",
        READ_REDIS_WAIT_REPLICAS="0",
        SWEEP_AFTER_SECONDS="3",
    )


@contextmanager
def running_failover_stack(
    directory: Path, *, wait_replicas: int, copies: int = 2, **env: str
) -> Iterator[FailoverStack]:
    """The stack on a fresh cluster; `copies` of every process; `env` on top of the rest."""
    (directory / "logs").mkdir(parents=True, exist_ok=True)
    with (
        running_cluster(directory / "cluster", replicas=True, node_timeout_ms=NODE_TIMEOUT_MS) as c,
        running_redis(directory / "read") as read,
    ):
        stack_env = {**failover_env(c.url, read.url, wait_replicas), **env}
        stack = ChaosStack(ProcessGroup(directory / "logs", stack_env), stack_env, copies=copies)
        try:
            stack.heal()
            yield FailoverStack(stack, c)
        finally:
            stop_together(stack.group)


def victim(cluster: RedisCluster) -> ClusterNode:
    """The master holding the most partitions, but not the simulated payment gateway's
    ledger (an outside system in real life: its losses are not the app's to heal)."""
    gateway = cluster.master_of(GATEWAY)
    held: dict[int, int] = {}
    for partition in range(PARTITIONS):
        node = cluster.master_of(tag(partition))
        if node.port != gateway.port:
            held[node.port] = held.get(node.port, 0) + 1
    port = max(held, key=lambda p: held[p])
    return next(n for n in cluster.live() if n.port == port)


def partitions_of(cluster: RedisCluster, node: ClusterNode) -> list[int]:
    return [p for p in range(PARTITIONS) if cluster.master_of(tag(p)).port == node.port]


def fail_over(
    cluster: RedisCluster, node: ClusterNode, within: float = 30.0, replica_lag: float = 0.0
) -> float:
    """SIGKILL `node`, wait until another master serves its slots and the cluster is ok,
    then start it again (it rejoins as a replica) and wait until it has caught up. Returns
    the seconds from the kill to the promotion.

    `replica_lag`: on one machine a replica is microseconds behind, so a kill loses next to
    nothing; to see what a lagging replica (another zone, a busy host) loses, the master's
    replica is first cut off for that long: its link is dropped and it may not come back
    (a wrong `masterauth`), so everything written meanwhile exists on the master alone."""
    slots = [key_slot(tag(p).encode()) for p in partitions_of(cluster, node)]
    replica = _replica_of(cluster, node) if replica_lag else None
    if replica is not None:
        _configure(replica, "masterauth", "cut-off")
        master = node.client()
        try:
            master.execute_command("CLIENT", "KILL", "TYPE", "replica")
        finally:
            master.close()
        time.sleep(replica_lag)
    killed_at = time.monotonic()
    node.kill()
    if replica is not None:
        _configure(replica, "masterauth", "")
    deadline = killed_at + within
    while True:
        try:
            moved = all(cluster.master_of(tag(p)).port != node.port for p in range(PARTITIONS))
            if moved:
                cluster.wait_ok(within=max(0.1, deadline - time.monotonic()))
                break
        except (RuntimeError, StopIteration, ValueError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"slots {slots} not taken over within {within} s")
        time.sleep(0.1)
    promoted_after = time.monotonic() - killed_at
    node.restart()
    cluster.wait_in_sync(within=within)
    return promoted_after


def _replica_of(cluster: RedisCluster, node: ClusterNode) -> ClusterNode:
    for replica in cluster.live():
        info = replica.info("replication")
        if info.get("role") == "slave" and int(str(info.get("master_port"))) == node.port:
            return replica
    raise AssertionError(f"{node.port} has no live replica")


def _configure(node: ClusterNode, name: str, value: str) -> None:
    client = node.client()
    try:
        client.config_set(name, value)
    finally:
        client.close()
