"""Checking the archive, and what it and the streams hold, per partition.

`verify`: every segment the manifest names is there with its checksum, row count and ids;
each segment follows the one before it (its `previous` is that one's last entry: no gap, no
overlap); and the stream takes over where the archive ends (nothing after the archive's last
entry was ever removed from the stream: XINFO STREAM's max-deleted-entry-id).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from app.kernel.archive.manifest import START, Manifest, load_manifest
from app.kernel.archive.segment import metadata, millis
from app.kernel.archive.store import ArchiveStore
from app.kernel.positions import parse_stream_id
from app.kernel.redis_types import text


class PartitionCheck(msgspec.Struct, frozen=True, kw_only=True):
    partition: int
    segments: int
    entries: int
    first: str
    last: str
    problems: list[str]


def check_segments(store: ArchiveStore, manifest: Manifest) -> list[str]:
    """What is wrong with the partition's segments (blocking: run in a thread)."""
    problems: list[str] = []
    previous = START
    for segment in manifest.segments:
        name = segment.path
        if segment.previous != previous:
            at = parse_stream_id(segment.previous)
            kind = "overlap" if at < parse_stream_id(previous) else "gap"
            problems.append(
                f"{kind} before {name}: it follows {segment.previous}, the segment before "
                f"ends at {previous}"
            )
        previous = segment.last
        body = store.read(name)
        if body is None:
            problems.append(f"{name} is missing")
            continue
        digest = hashlib.sha256(body).hexdigest()
        if digest != segment.sha256:
            said = segment.sha256[:12]
            problems.append(f"{name}: checksum {digest[:12]}…, the manifest says {said}…")
            continue
        meta = metadata(body)
        named = (segment.first, segment.last, str(segment.count))
        if (meta.get("first"), meta.get("last"), meta.get("count")) != named:
            problems.append(
                f"{name}: holds {meta.get('first')}..{meta.get('last')}, "
                f"{meta.get('count')} rows; the manifest says {named}"
            )
    return problems


async def stream_seam(redis: Redis, stream: str, archived_last: str) -> list[str]:
    """Whether the stream still has every entry after the archive's last one."""
    try:
        info: dict[str, Any] = await redis.xinfo_stream(stream)
    except ResponseError:
        return []  # no stream: nothing was ever written, or it all went
    deleted = str(info.get("max-deleted-entry-id") or START)
    if parse_stream_id(deleted) > parse_stream_id(archived_last):
        return [
            f"the stream lost entries up to {deleted}, after the archive's last ({archived_last})"
        ]
    return []


async def verify_partition(
    redis: Redis, store: ArchiveStore, partition: int, stream: str
) -> PartitionCheck:
    manifest = await asyncio.to_thread(load_manifest, store, partition)
    problems = await asyncio.to_thread(check_segments, store, manifest)
    problems += await stream_seam(redis, stream, manifest.last)
    return PartitionCheck(
        partition=partition,
        segments=len(manifest.segments),
        entries=manifest.entries,
        first=manifest.first or "",
        last=manifest.last if manifest.segments else "",
        problems=problems,
    )


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
