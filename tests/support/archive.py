"""The archive in tests: the real archiver loop in this event loop, events written the way
the commit writes them, and what a partition's stream and archive hold."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import msgspec
from redis.asyncio import Redis

from app.config import Settings
from app.kernel import keys
from app.kernel.archive.archiver import Archiver
from app.kernel.archive.manifest import Manifest, load_manifest
from app.kernel.archive.store import ArchiveStore
from app.kernel.leases import Leases
from app.kernel.messages import StoredEvent
from app.kernel.redis_types import range_entries

Row = tuple[str, dict[str, str]]
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def _alone() -> int:
    return 1


@contextlib.asynccontextmanager
async def running_archiver(
    redis: Redis,
    store: ArchiveStore,
    settings: Settings,
    *,
    retention_seconds: float | None = None,
    owner: str = "test-archiver",
) -> AsyncIterator[Archiver]:
    """The archiver loop (segment size and age from `settings`), stopped on exit."""
    archiver = Archiver(
        redis,
        store,
        settings.partitions,
        Leases(redis, owner, settings.lease_ms),
        _alone,
        keys.events,
        segment_events=settings.archive_segment_events,
        segment_seconds=settings.archive_segment_seconds,
        retention_seconds=(
            settings.event_retention_seconds if retention_seconds is None else retention_seconds
        ),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(archiver.run(stop, tick=0.05))
    try:
        yield archiver
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)


async def write_events(
    redis: Redis, partition: int, count: int, *, aggregate: str = "thing:A", start: int = 1
) -> list[str]:
    """`count` events of one aggregate, as the commit writes them (every third traced)."""
    ids = []
    for version in range(start, start + count):
        stored = StoredEvent(
            type="ThingHappened",
            aggregate=aggregate.partition(":")[0],
            aggregate_id=aggregate.partition(":")[2],
            version=version,
            command_id=f"c{version}-{partition}",
            at=1765000000.5,
            data=msgspec.Raw(msgspec.json.encode({"n": version, "note": "ünïcode"})),
        )
        fields = {
            "t": stored.type,
            "a": aggregate,
            "v": str(version),
            "e": msgspec.json.encode(stored).decode(),
        }
        if version % 3 == 0:
            fields["tp"] = TRACEPARENT
        ids.append(str(await redis.xadd(keys.events(partition), fields)))  # type: ignore[arg-type]
    return ids


async def stream_rows(redis: Redis, partition: int) -> list[Row]:
    return range_entries(await redis.xrange(keys.events(partition)))


async def manifest_of(store: ArchiveStore, partition: int) -> Manifest:
    return await asyncio.to_thread(load_manifest, store, partition)
