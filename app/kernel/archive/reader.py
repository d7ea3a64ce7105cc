"""One sequence per partition: the archive's entries, then the live stream's, in order, each
exactly once.

The reader goes through the segments the manifest names after its cursor, then reads the
stream from its cursor *inclusive*: finding the cursor there proves nothing between was
trimmed. When the stream no longer has it (a trim raced the read), the manifest is read again
(a trim only ever follows the manifest naming what it removes) and the reader goes on from the
archive. Streams that are not archived are read from Redis alone.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator, Callable

from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.archive.manifest import START, Manifest, Segment, load_manifest
from app.kernel.archive.segment import Row, decode
from app.kernel.archive.store import ArchiveStore
from app.kernel.handlers import Entry
from app.kernel.positions import parse_stream_id
from app.kernel.redis_types import range_entries

CHUNK = 5000
StreamId = tuple[int, int]


class _Loaded:
    """A segment's entries, decoded, with their ids for bisecting."""

    def __init__(self, segment: Segment, rows: list[Row]) -> None:
        self.segment = segment
        self.rows = rows
        self.ids = [parse_stream_id(entry_id) for entry_id, _ in rows]


class ArchiveReader:
    """Reads partitions' events from the archive, then the stream (`stream_of(partition)`)."""

    def __init__(
        self, redis: Redis, store: ArchiveStore | None, stream_of: Callable[[int], str]
    ) -> None:
        self._redis = redis
        self._store = store
        self.stream_of = stream_of
        self._manifests: dict[int, Manifest] = {}
        self._loaded: dict[int, _Loaded] = {}

    async def manifest(self, partition: int, *, fresh: bool = False) -> Manifest:
        if self._store is None:
            return Manifest(partition=partition)
        if fresh or partition not in self._manifests:
            self._manifests[partition] = await asyncio.to_thread(
                load_manifest, self._store, partition
            )
        return self._manifests[partition]

    async def archived_any(self, partition: int) -> bool:
        """Whether the archive holds any of the partition's entries (its summary in Redis,
        cached before any trim: one HGET, no store access)."""
        if self._store is None:
            return False
        entries = await self._redis.hget(keys.archive_summary(partition), "entries")
        return bool(entries and int(entries))

    async def entries(
        self, partition: int, after: str = START, until: str = "+", *, chunk: int = CHUNK
    ) -> AsyncIterator[Entry]:
        """Every entry of the partition after `after`, up to `until` (inclusive)."""
        async for rows in self.chunks(partition, after, until, chunk=chunk):
            for entry_id, fields in rows:
                yield Entry(entry_id, partition, fields)

    async def chunks(
        self, partition: int, after: str = START, until: str = "+", *, chunk: int = CHUNK
    ) -> AsyncIterator[list[Row]]:
        cursor = after
        while True:
            rows = await self.read(partition, cursor, until, chunk)
            if not rows:
                return
            yield rows
            cursor = rows[-1][0]

    async def read(
        self, partition: int, after: str, until: str = "+", count: int = CHUNK, *, stream: str = ""
    ) -> list[Row]:
        """Up to `count` entries after `after` (exclusive) up to `until` (inclusive), archive
        first. `stream`: another stream of the partition (read from Redis alone)."""
        if stream and stream != self.stream_of(partition):
            reply = await self._redis.xrange(stream, f"({after}", until, count=count)
            return range_entries(reply)
        end = _end(until)
        rows: list[Row] = []
        cursor = after
        while len(rows) < count:
            archived = await self._from_archive(partition, cursor, end, count - len(rows))
            if not archived:
                live, contiguous = await self._from_stream(
                    partition, cursor, until, count - len(rows)
                )
                if contiguous:
                    rows += live
                    break
                await self.manifest(partition, fresh=True)  # a trim may have raced the read
                archived = await self._from_archive(partition, cursor, end, count - len(rows))
                if not archived:  # nothing after the cursor was archived, so none trimmed
                    rows += live
                    break
            rows += archived
            cursor = archived[-1][0]
        return rows

    async def _from_archive(
        self, partition: int, cursor: str, end: StreamId, count: int
    ) -> list[Row]:
        manifest = await self.manifest(partition)
        at = parse_stream_id(cursor)
        if at >= end:
            return []
        following = manifest.after(cursor)
        if not following:
            self._loaded.pop(partition, None)  # past the archive: the stream from here on
            return []
        if parse_stream_id(following[0].first) > end:
            return []
        loaded = await self._load(partition, following[0])
        start = bisect.bisect_right(loaded.ids, at)
        stop = min(bisect.bisect_right(loaded.ids, end), start + count)
        return loaded.rows[start:stop]

    async def _load(self, partition: int, segment: Segment) -> _Loaded:
        loaded = self._loaded.get(partition)
        if loaded is None or loaded.segment != segment:
            assert self._store is not None
            body = await asyncio.to_thread(self._store.read, segment.path)
            if body is None:
                raise FileNotFoundError(f"segment {segment.path} is missing from the archive")
            rows = await asyncio.to_thread(decode, body)
            loaded = self._loaded[partition] = _Loaded(segment, rows)
        return loaded

    async def _from_stream(
        self, partition: int, cursor: str, until: str, count: int
    ) -> tuple[list[Row], bool]:
        """Entries after `cursor`; and whether they surely follow it (the stream still has
        the cursor, or nothing was ever read)."""
        start = "-" if cursor == START else cursor
        reply = await self._redis.xrange(self.stream_of(partition), start, until, count=count + 1)
        rows = range_entries(reply)
        if rows and rows[0][0] == cursor:
            return rows[1:], True
        return rows[:count], False


def _end(until: str) -> StreamId:
    if until == "+":
        return (2**64, 0)
    return parse_stream_id(until)
