"""The archiver: copies each partition's acknowledged events into segments, then trims.

One owner per partition (a lease, shared out among the live archiver processes like any
worker kind's partitions). The owner of a partition:

1. on taking it, reads its manifest and heals what a crash left (`heal`);
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
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from app.kernel.archive.groups import acknowledged_end
from app.kernel.archive.manifest import (
    Manifest,
    cache_summary,
    load_manifest,
    save_manifest,
    summary,
)
from app.kernel.archive.segment import Encoded, Row, day_of, encode, metadata, millis
from app.kernel.archive.segment import partition_dir as folder_of
from app.kernel.archive.store import ArchiveStore
from app.kernel.archive.trim import trim
from app.kernel.consumer import LeaseClock, Stall
from app.kernel.handlers import INFRA_ERRORS
from app.kernel.leases import Leases
from app.kernel.positions import parse_stream_id
from app.kernel.redis_types import range_entries

log = logging.getLogger(__name__)

GROUP = "archive"
"""The leases' name: `lease:archive:<partition>`."""
READ_BATCH = 10_000
STALL_SECONDS = 30.0


class PartitionArchive:
    """The archiving of one partition, by its owner."""

    def __init__(
        self,
        redis: Redis,
        store: ArchiveStore,
        partition: int,
        stream: str,
        *,
        segment_events: int,
        segment_seconds: float,
        retention_ms: int,
    ) -> None:
        self._redis = redis
        self._store = store
        self.partition = partition
        self.stream = stream
        self._segment_events = segment_events
        self._segment_seconds = segment_seconds
        self._retention_ms = retention_ms
        self.manifest = Manifest(partition=partition)
        self.buffer: list[Row] = []
        self.trimmed = 0

    async def open(self) -> None:
        self.manifest = await asyncio.to_thread(self._heal)
        await cache_summary(self._redis, self.partition, summary(self.manifest))

    def _heal(self) -> Manifest:
        """The manifest, with the segments a crash left unnamed adopted when they follow on
        (and the others deleted: readers never read a file the manifest does not name)."""
        manifest = load_manifest(self._store, self.partition)
        named = {s.path for s in manifest.segments}
        last_day = manifest.segments[-1].day if manifest.segments else ""
        folder = folder_of(self.partition)
        days = [d for d in self._store.folders(folder) if d.partition("=")[2] >= last_day]
        found = [f for day in days for f in self._store.files(f"{folder}/{day}")]
        orphans = sorted(
            (f for f in found if f.endswith(".parquet") and f not in named), key=_first_of
        )
        adopted = False
        for path in orphans:
            body = self._store.read(path)
            meta = _metadata(body)
            if body and meta.get("previous") == manifest.last and int(meta.get("count", 0)):
                manifest = manifest.appended(_encoded(path, body, meta))
                adopted = True
                log.info("archive p%d: adopted %s, written before a crash", self.partition, path)
            else:
                self._store.delete(path)
                log.info("archive p%d: deleted %s (not in the manifest)", self.partition, path)
        if adopted:
            save_manifest(self._store, manifest)
        return manifest

    async def step(self, may_write: Callable[[], bool]) -> int:
        """Read what was acknowledged, write the segments that are due, trim. Returns the
        entries read or archived (0: nothing to do now)."""
        read = await self._read_acknowledged()
        archived = 0
        while self.buffer and may_write():
            count = self._due()
            if not count:
                break
            rows = self.buffer[:count]
            self.manifest = await asyncio.to_thread(self._write, rows)
            del self.buffer[:count]
            archived += count
            await cache_summary(self._redis, self.partition, summary(self.manifest))
        if self._retention_ms and may_write():
            trimmed, _ = await trim(
                self._redis, self.stream, self.partition, self.manifest.last, self._retention_ms
            )
            self.trimmed += trimmed
        return read + archived

    async def _read_acknowledged(self) -> int:
        """Read what every group acknowledged past the buffer, until a segment's worth."""
        end = await acknowledged_end(self._redis, self.stream)
        read = 0
        while len(self.buffer) < self._segment_events:
            cursor = self.buffer[-1][0] if self.buffer else self.manifest.last
            if end is not None and parse_stream_id(end) <= parse_stream_id(cursor):
                break
            room = min(self._segment_events - len(self.buffer), READ_BATCH)
            reply = await self._redis.xrange(self.stream, f"({cursor}", end or "+", count=room)
            rows = range_entries(reply)
            self.buffer += rows
            read += len(rows)
            if len(rows) < room:
                break
        return read

    def _due(self) -> int:
        """How many of the buffer's first entries make a segment now (0: none yet)."""
        first_day = day_of(self.buffer[0][0])
        count = min(len(self.buffer), self._segment_events)
        for index in range(count):  # a segment never spans two days
            if day_of(self.buffer[index][0]) != first_day:
                return index  # the first day is over: its entries go now
        if count == self._segment_events:
            return count
        age = time.time() - millis(self.buffer[0][0]) / 1000
        return count if age >= self._segment_seconds else 0

    def _write(self, rows: list[Row]) -> Manifest:
        """The segment, then the manifest naming it (blocking: runs in a thread)."""
        encoded = encode(self.partition, rows, self.manifest.last)
        self._store.write(encoded.path, encoded.body)
        manifest = self.manifest.appended(encoded)
        save_manifest(self._store, manifest)
        return manifest


def _metadata(body: bytes | None) -> dict[str, str]:
    """What a segment says of itself ({} if it is no segment: half written, or foreign)."""
    if not body:
        return {}
    try:
        return metadata(body)
    except ValueError:  # pyarrow's ArrowInvalid: not a Parquet file
        return {}


def _first_of(path: str) -> tuple[int, int]:
    return parse_stream_id(path.rpartition("/")[2].partition("_")[0])


def _encoded(path: str, body: bytes, meta: dict[str, str]) -> Encoded:
    return Encoded(
        path=path,
        body=body,
        first=meta["first"],
        last=meta["last"],
        previous=meta["previous"],
        count=int(meta["count"]),
        sha256=hashlib.sha256(body).hexdigest(),
        day=day_of(meta["first"]),
    )


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
        self.archived += done
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
