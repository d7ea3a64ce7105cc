"""What a consumer of partitioned streams is given and what it must offer."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

import msgspec
from redis.exceptions import (
    ClusterDownError,
    ReadOnlyError,
    RedisClusterUnreachableError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.kernel.replication import ReplicationTimeout

INFRA_ERRORS = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    ClusterDownError,
    TryAgainError,
    ReadOnlyError,
    SlotNotCoveredError,
    RedisClusterUnreachableError,
    ReplicationTimeout,
)
"""Redis trouble: never a handler's fault; the entries are read again once it is back. On a
Cluster that includes a failover under way (CLUSTERDOWN, TRYAGAIN, a slot nobody serves yet,
a demoted master's READONLY), and a write its replicas did not confirm in time."""


class Entry(msgspec.Struct, frozen=True, gc=False):
    """A stream entry as a handler gets it (a Struct: made for every entry read)."""

    id: str
    partition: int
    fields: dict[str, str]


class LeaseLost(Exception):
    """Another owner wrote first: stop this partition now, without acking."""


class PartitionHandler(Protocol):
    group: str

    def stream(self, partition: int) -> str: ...

    async def handle(self, partition: int, entries: list[Entry]) -> Collection[str] | None:
        """Apply a batch. Must be safe to repeat; raise to have it retried.

        May return ids of entries it goes on with in the background: those are left pending
        (the handler acknowledges them itself, see `acknowledge`).
        """

    async def skip(self, partition: int, entry: Entry) -> None:
        """Mark a dead-lettered entry as done so it is not applied later."""


def order_key(handler: PartitionHandler, entry: Entry) -> str | None:
    """The key whose entries must be applied in order (an aggregate, an order), if any.

    A handler says so with `order_key(entry)`; a keyed handler's key is its `key_of`.
    """
    of = getattr(handler, "order_key", None) or getattr(handler, "key_of", None)
    key: str | None = of(entry) if of is not None and entry.fields else None
    return key


async def replay(handler: PartitionHandler, partition: int, entries: list[Entry]) -> None:
    """Apply entries again, out of their stream's order (dead letters being retried).

    A handler whose `handle` skips what is behind its checkpoint offers `replay`."""
    again = getattr(handler, "replay", None)
    if again is not None:
        await again(partition, entries)
    else:
        await handler.handle(partition, entries)


class KeyedHandler(PartitionHandler, Protocol):
    """A handler whose entries need order only per key (e.g. per order), not per partition.

    Entries of different keys run concurrently, so one slow entry (a payment waiting on a
    gateway) holds up only the entries of its own key. An entry whose key is None is not
    for this handler: it is acknowledged with the others, without running anything.
    """

    def key_of(self, entry: Entry) -> str | None: ...
