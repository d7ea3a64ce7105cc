"""Acknowledgements that wait for replicas: one WAIT per node a batch wrote to, in the same
round trip as the writes (REDIS_WAIT_REPLICAS).

Redis replication is asynchronous: a master that dies after answering a write, before its
replica got it, loses the write, and the replica that takes over never heard of it.
`WAIT n timeout` blocks until n replicas have every write sent on *this connection* before
it (or the timeout passed) and answers how many do, so it must follow the writes on their
connection: on one server a pipeline is one connection; on a Cluster, redis-py's pipeline
sends each node's commands on one connection of that node, and would route a keyless WAIT
by the command's own policy (every primary), so it is routed here to each node the batch
wrote to (`target_nodes`).

A WAIT answered by fewer than n replicas — or a batch during which a written slot moved to
another node (redis-py then resends the command to the new master, on another connection
that the WAIT does not cover) — raises ReplicationTimeout: the writes are there but not known
to be replicated, so nothing may be acknowledged on them. A client gets `503
replication_timeout` and sends again under its Idempotency-Key; a worker reads its entries
again, and their dedup records make the repeat a no-op (a repeat writes too — it refreshes
its dedup record — so its own WAIT covers what it found).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import SlotNotCoveredError


class ReplicationTimeout(Exception):
    """Written, but fewer replicas than asked confirmed it in time: acknowledge nothing."""


@dataclass(frozen=True)
class Replication:
    """How many replicas must hold a write before it is acknowledged (0: none, no WAIT)."""

    replicas: int = 0
    timeout_ms: int = 1000

    @property
    def on(self) -> bool:
        return self.replicas > 0


NO_WAIT = Replication()


@dataclass
class Waits:
    """The WAITs one pipeline carries after its writes, and where they went."""

    count: int = 0
    slots: dict[int, str] = field(default_factory=dict)
    """Cluster: each written slot's node when the batch was sent."""


async def add_waits(
    redis: Redis, pipe: Pipeline, replication: Replication, written: Iterable[str]
) -> Waits | None:
    """Queue one WAIT per node that `written` keys live on, after the pipeline's writes."""
    if not replication.on:
        return None
    wait = ("WAIT", replication.replicas, replication.timeout_ms)
    if not isinstance(redis, RedisCluster):
        pipe.execute_command(*wait)
        return Waits(count=1)
    waits = Waits()
    targets: dict[str, Any] = {}
    for key in written:
        slot = redis.keyslot(key)
        if slot in waits.slots:
            continue
        node = await _node_of(redis, key)
        waits.slots[slot] = node.name
        targets.setdefault(node.name, node)
    for node in targets.values():
        pipe.execute_command(*wait, target_nodes=node)
    waits.count = len(targets)
    return waits


async def _node_of(redis: RedisCluster, key: str) -> Any:
    try:
        return redis.get_node_from_key(key)
    except SlotNotCoveredError:  # no slot map yet (a client's first call): fetch it
        await redis.initialize()
        return redis.get_node_from_key(key)


def settle(
    redis: Redis, replication: Replication, waits: Waits | None, replies: Sequence[Any]
) -> list[Any]:
    """The pipeline's replies without its WAITs'; raises if a WAIT fell short (or failed)."""
    if waits is None or not waits.count:
        return list(replies)
    kept, answered = list(replies[: -waits.count]), replies[-waits.count :]
    for reply in answered:
        if isinstance(reply, Exception):
            raise reply
        if int(reply) < replication.replicas:
            raise ReplicationTimeout(
                f"{reply} of {replication.replicas} replicas confirmed the write "
                f"within {replication.timeout_ms} ms"
            )
    if isinstance(redis, RedisCluster):
        for slot, name in waits.slots.items():
            moved = redis.nodes_manager.slots_cache.get(slot)
            if not moved or moved[0].name != name:
                raise ReplicationTimeout(f"slot {slot} moved off {name} during the batch")
    return kept


async def confirm(redis: Redis, replication: Replication, touch: Sequence[tuple[str, int]]) -> None:
    """Make sure what is already written on the nodes of `touch` is replicated: a retried
    request found its first answer written, but that answer may never have been confirmed.
    Each (key, seconds) gets its expiry set again (a write, so the WAIT after it covers
    everything before it on that node): one round trip, only with replication on."""
    if not replication.on or not touch:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for key, seconds in touch:
            pipe.expire(key, seconds)
        waits = await add_waits(redis, pipe, replication, [key for key, _ in touch])
        settle(redis, replication, waits, await pipe.execute(raise_on_error=False))
