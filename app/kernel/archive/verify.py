"""Checking the archive, and what it and the streams hold, per partition.

`verify`: every segment the manifest names is there with its checksum, row count and ids;
each segment follows the one before it (its `previous` is that one's last entry: no gap, no
overlap); and the stream takes over where the archive ends (nothing after the archive's last
entry was ever removed from the stream: every entry the stream was ever given, XINFO
STREAM's entries-added, is archived or still in it).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from app.kernel.archive.manifest import START, Manifest, load_manifest
from app.kernel.archive.segment import metadata
from app.kernel.archive.store import ArchiveStore
from app.kernel.positions import parse_stream_id


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


async def stream_seam(redis: Redis, stream: str, manifest: Manifest) -> list[str]:
    """Whether the stream still has every entry after the archive's last one: it still holds
    an entry the archive has, or every entry ever added is either archived or still there."""
    try:
        info: dict[str, Any] = await redis.xinfo_stream(stream)
    except ResponseError:
        return []  # no stream: nothing was ever written
    first = info.get("first-entry")
    if first and parse_stream_id(str(first[0])) <= parse_stream_id(manifest.last):
        return []
    missing = int(info.get("entries-added") or 0) - manifest.entries - int(info.get("length") or 0)
    if missing > 0:
        return [
            f"{missing} entries after the archive's last ({manifest.last}) are neither archived "
            "nor in the stream"
        ]
    return []


async def verify_partition(
    redis: Redis, store: ArchiveStore, partition: int, stream: str
) -> PartitionCheck:
    manifest = await asyncio.to_thread(load_manifest, store, partition)
    problems = await asyncio.to_thread(check_segments, store, manifest)
    problems += await stream_seam(redis, stream, manifest)
    return PartitionCheck(
        partition=partition,
        segments=len(manifest.segments),
        entries=manifest.entries,
        first=manifest.first or "",
        last=manifest.last if manifest.segments else "",
        problems=problems,
    )
