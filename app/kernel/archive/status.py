"""What each partition's stream and archive hold, for the operator (the status page, `storefront
archive status`): ages in seconds, the archive's size from its cached summary."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from app.kernel.archive.manifest import START, cached_summaries
from app.kernel.archive.segment import millis
from app.kernel.redis_types import text


class PartitionStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A partition's stream and archive, for the operator (ages in seconds)."""

    partition: int
    stream_length: int
    oldest_in_stream_age: float | None
    archived_entries: int
    archived_segments: int
    archived_bytes: int
    archive_lag_entries: int
    archive_lag_seconds: float | None
    """How old the oldest entry not yet archived is (None: everything is archived)."""


async def partition_status(
    redis: Redis,
    partition: int,
    stream: str,
    archived_last: str,
    archived_entries: int,
    segments: int = 0,
    archived_bytes: int = 0,
    now: Callable[[], float] = time.time,
) -> PartitionStatus:
    """Two round trips: the stream's length, first entry and entries ever added; the first
    entry after the archive."""
    try:
        info: dict[str, Any] = await redis.xinfo_stream(stream)
    except ResponseError:
        info = {}
    first = info.get("first-entry")
    length = int(info.get("length") or 0)
    added = int(info.get("entries-added") or length)
    after = archived_last or START
    reply = await redis.xrange(stream, f"({after}", "+", count=1) if length else []
    oldest = now() - millis(text(first[0])) / 1000 if first else None
    lag_at = now() - millis(text(reply[0][0])) / 1000 if reply else None
    return PartitionStatus(
        partition=partition,
        stream_length=length,
        oldest_in_stream_age=round(oldest, 1) if oldest is not None else None,
        archived_entries=archived_entries,
        archived_segments=segments,
        archived_bytes=archived_bytes,
        archive_lag_entries=max(0, added - archived_entries) if reply else 0,
        archive_lag_seconds=round(max(0.0, lag_at), 1) if lag_at is not None else None,
    )


async def archive_status(
    redis: Redis, partitions: int, stream_of: Callable[[int], str]
) -> list[PartitionStatus]:
    """Every partition's (the archive as its cached summary says)."""
    summaries = await cached_summaries(redis, partitions)
    return [
        await partition_status(
            redis,
            partition,
            stream_of(partition),
            found.last,
            found.entries,
            segments=found.segments,
            archived_bytes=found.bytes,
        )
        for partition, found in enumerate(summaries)
    ]


def duration(seconds: float | None) -> str:
    """An age as people read it: 42 s, 3.5 min, 2.0 h, 1.5 d."""
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def size(count: int) -> str:
    """Bytes as people read them: 512 B, 3.2 MiB."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
