"""Helpers for the kernel and catalog integration tests: snapshots, event counts, statuses.

Everything here only reads Redis (or runs the real projector loops); nothing stands in for
a part of the product.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis

from app.aggregates import PRODUCT
from app.config import Settings
from app.domain.products import Product
from app.kernel import keys
from app.kernel.command_status import FINAL, CommandStatus
from app.kernel.consumer import PartitionedConsumer, PartitionHandler
from app.kernel.leases import Leases
from app.kernel.messages import StoredEvent
from app.kernel.partitions import partition_of, partition_of_command
from app.kernel.projector_pass import projector_passes
from app.projections.registry import build
from app.services import Services, build_services
from tests.support.polling import eventually

_stored = msgspec.json.Decoder(StoredEvent)
Snapshot = dict[str, tuple[str, Any]]


# --- whole-database snapshots -----------------------------------------------------------------


async def snapshot(redis: Redis) -> Snapshot:
    """Every key with its type and full value (streams: every entry id and its fields)."""
    result: Snapshot = {}
    async for key in redis.scan_iter(count=1000):
        kind = await redis.type(key)
        value: Any
        if kind == "string":
            value = await redis.get(key)
        elif kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "list":
            value = await redis.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(await redis.smembers(key))
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = await redis.xrange(key)
        else:
            value = None
        result[key] = (kind, value)
    return result


def changed_keys(before: Snapshot, after: Snapshot) -> set[str]:
    """Keys added, removed or changed between two snapshots."""
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


# --- events and streams -----------------------------------------------------------------------


async def stored_events(redis: Redis, partitions: int) -> list[tuple[str, StoredEvent]]:
    """Every domain event on every partition's events stream, with its entry id."""
    found: list[tuple[str, StoredEvent]] = []
    for partition in range(partitions):
        for entry_id, fields in await redis.xrange(keys.events(partition)):
            found.append((entry_id, _stored.decode(fields["e"])))
    return found


async def event_counts(redis: Redis, partitions: int) -> Counter[tuple[str, str]]:
    """How many events of each (type, aggregate id) the events streams hold."""
    return Counter((e.type, e.aggregate_id) for _, e in await stored_events(redis, partitions))


async def total_length(redis: Redis, names: Sequence[str]) -> int:
    return sum([await redis.xlen(name) for name in names])


async def queued_commands(redis: Redis, partitions: int) -> int:
    return await total_length(redis, [keys.commands(p) for p in range(partitions)])


async def pending(redis: Redis, stream: str, group: str) -> int:
    if not await redis.exists(stream):
        return 0
    groups = await redis.xinfo_groups(stream)
    return sum(int(g["pending"]) for g in groups if g["name"] == group)


# --- write model and statuses -----------------------------------------------------------------


async def product_record(services: Services, sku: str) -> tuple[int, Product | None]:
    """(version, state) of a product in the write model."""
    partition = partition_of(sku, services.settings.partitions)
    version, raw = await services.write.hmget(
        keys.aggregate(partition, PRODUCT.name, sku), ["v", "s"]
    )
    return int(version or 0), PRODUCT.decoder.decode(raw) if raw else None


async def status_of(services: Services, command_id: str) -> CommandStatus | None:
    partition = partition_of_command(command_id, services.settings.partitions)
    assert partition is not None, command_id
    stored = await services.statuses.get(partition, command_id)
    return stored.view if stored is not None else None


async def final_status(
    services: Services, command_id: str, *, within: float = 30.0
) -> CommandStatus:
    """Wait until a command's status is succeeded or failed."""

    async def probe() -> CommandStatus | None:
        return await status_of(services, command_id)

    found = await eventually(
        probe,
        until=lambda s: s is not None and s.status in FINAL,
        timeout=within,
        message=f"final status of {command_id}",
    )
    assert found is not None
    return found


async def dedup_record(services: Services, command_id: str) -> dict[str, str]:
    partition = partition_of_command(command_id, services.settings.partitions)
    assert partition is not None, command_id
    record: dict[str, str] = await services.write.hgetall(keys.dedup(partition, command_id))
    return record


# --- projector loops --------------------------------------------------------------------------


async def _alone() -> int:
    return 1


@contextlib.asynccontextmanager
async def running_projections(
    settings: Settings, names: tuple[str, ...], *, owner: str = "proj", archive: bool = False
) -> AsyncIterator[Services]:
    """The real projector loop, for only the named projections (so it stops quickly);
    `archive`: a new read model finds what was trimmed in the archive, as the projector's."""
    services = build_services(settings)
    handlers: list[PartitionHandler] = list(
        projector_passes(
            build(names, settings),
            services.read,
            services.write,
            archive=services.archive if archive else None,
        )
    )
    consumer = PartitionedConsumer(
        services.write,
        handlers,
        settings.partitions,
        Leases(services.write, owner),
        _alone,
        block_ms=100,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop, tick=0.1))
    try:
        yield services
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), timeout=20)
        await services.close()
