"""The archiving of one partition by its owner: read what every consumer group has
acknowledged into a buffer, write the segments that are due and the manifest naming each,
trim the stream (see archiver for the loop and the leases)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable

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
from app.kernel.positions import parse_stream_id
from app.kernel.redis_types import range_entries

log = logging.getLogger(__name__)

READ_BATCH = 10_000


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
        self.archived = 0
        """Entries this owner wrote into segments."""

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
            self.archived += count
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
