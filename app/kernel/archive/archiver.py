"""The archiver: copies each partition's acknowledged events into segments, then trims.

One owner per partition (a lease, shared out among the live archiver processes like any
worker kind's partitions). The owner of a partition:

1. on taking it, reads its manifest and heals what a crash left (partition.py);
2. reads the entries every consumer group has acknowledged, past what it holds, into a
   buffer (XRANGE, at most `segment_events` at a time);
3. writes a segment once `segment_events` wait, once the oldest is `segment_seconds` old, or
   once the day of the first is over (a segment never spans two days), then the manifest
   naming it (the durable truth), then its Redis cache;
4. trims the stream up to what the manifest holds, past retention (see trim).

It writes only while its lease is surely held (consumer.LeaseClock), so a segment or a
manifest is never written by an owner that may have lost the partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from app.kernel.archive.partition import PartitionArchive
from app.kernel.archive.store import ArchiveStore
from app.kernel.consumer_health import Stall
from app.kernel.handlers import INFRA_ERRORS
from app.kernel.leases import LeaseClock, Leases

log = logging.getLogger(__name__)

GROUP = "archive"
"""The leases' name: `lease:archive:<partition>`."""
STALL_SECONDS = 30.0


@dataclass
class _Owned:
    archive: PartitionArchive
    lease: LeaseClock
    failing_since: float = 0.0
    error: str = ""
    opened: bool = False


class Archiver:
    """Archives the partitions this process holds leases on (a fair share among the live
    archivers)."""

    def __init__(
        self,
        redis: Redis,
        store: ArchiveStore,
        partitions: int,
        leases: Leases,
        members: Callable[[], Awaitable[int]],
        stream_of: Callable[[int], str],
        *,
        segment_events: int,
        segment_seconds: float,
        retention_seconds: float,
    ) -> None:
        self._redis = redis
        self._store = store
        self._partitions = partitions
        self._leases = leases
        self._members = members
        self._stream_of = stream_of
        self._segment_events = segment_events
        self._segment_seconds = segment_seconds
        self._retention_ms = int(retention_seconds * 1000)
        self._owned: dict[int, _Owned] = {}
        self.archived = 0

    @property
    def owned(self) -> list[int]:
        return sorted(self._owned)

    def stalls(self) -> list[Stall]:
        """Partitions whose archiving has failed for a while."""
        now = time.monotonic()
        return [
            Stall(GROUP, partition, round(now - owned.failing_since, 1), owned.error)
            for partition, owned in sorted(self._owned.items())
            if owned.failing_since and now - owned.failing_since > STALL_SECONDS
        ]

    async def run(self, stop: asyncio.Event, tick: float = 1.0) -> None:
        renewed = 0.0
        try:
            while not stop.is_set():
                if time.monotonic() - renewed >= tick:
                    try:
                        await self.rebalance()
                    except INFRA_ERRORS as exc:
                        log.warning("archive lease upkeep failed, will retry: %s", exc)
                    renewed = time.monotonic()
                busy = 0
                for partition in list(self._owned):
                    busy += await self._step(partition)
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=tick)
        finally:
            for partition in list(self._owned):
                with contextlib.suppress(*INFRA_ERRORS):
                    await self._leases.release(GROUP, partition)
            self._owned.clear()

    async def _step(self, partition: int) -> int:
        owned = self._owned[partition]
        before = owned.archive.archived
        try:
            if not owned.opened:
                await owned.archive.open()
                owned.opened = True
            done = await owned.archive.step(lambda: owned.lease.read_budget() > 0)
        except Exception as exc:  # Redis or the store: tried again next tick
            if not isinstance(exc, INFRA_ERRORS):
                log.exception("archive p%d failed", partition)
            else:
                log.warning("archive p%d: %s", partition, exc)
            owned.error = f"{type(exc).__name__}: {exc}"[:300]
            owned.failing_since = owned.failing_since or time.monotonic()
            return 0
        owned.failing_since, owned.error = 0.0, ""
        self.archived += owned.archive.archived - before
        return done

    async def rebalance(self) -> None:
        members = max(1, await self._members())
        target = math.ceil(self._partitions / members)
        for partition, owned in sorted(self._owned.items()):
            asked_at = time.monotonic()
            if await self._leases.renew(GROUP, partition):
                owned.lease.held_since(asked_at)
            else:
                log.info("lost archive partition %d", partition)
                del self._owned[partition]
        for partition in sorted(self._owned)[target:]:
            del self._owned[partition]
            await self._leases.release(GROUP, partition)
        for partition in range(self._partitions):
            if len(self._owned) >= target:
                break
            if partition in self._owned:
                continue
            asked_at = time.monotonic()
            if await self._leases.acquire(GROUP, partition):
                self._take(partition, asked_at)

    def _take(self, partition: int, asked_at: float) -> None:
        archive = PartitionArchive(
            self._redis,
            self._store,
            partition,
            self._stream_of(partition),
            segment_events=self._segment_events,
            segment_seconds=self._segment_seconds,
            retention_ms=self._retention_ms,
        )
        lease = LeaseClock(self._leases.ttl_seconds)
        lease.held_since(asked_at)
        self._owned[partition] = _Owned(archive, lease)
        log.info("took archive partition %d", partition)
