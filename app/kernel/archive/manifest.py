"""The manifest: per partition, the segments archived, in order — the durable truth of what
the archive holds. One object per partition (`partition=N/_manifest.json`, which Hive-style
readers skip), rewritten whole by the partition's one archiver (its lease) after each
segment, and cached in Redis (`keys.archive_summary`) for the status page and the trim.

A crash between a segment and its manifest leaves a file the manifest does not name; the
next owner adopts it if it follows on (its `previous` is the manifest's last entry), else
deletes it (see archiver.heal). Readers only ever read what the manifest names.
"""

from __future__ import annotations

import msgspec
from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.archive.segment import Encoded, partition_dir
from app.kernel.archive.store import ArchiveStore
from app.kernel.positions import parse_stream_id
from app.kernel.redis_types import field_map, text_dict

START = "0-0"
"""Before the first entry of every stream."""


class Segment(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    first: str
    last: str
    previous: str
    """The entry right before `first` (the previous segment's `last`; START for the first)."""
    count: int
    sha256: str
    bytes: int
    day: str


class Manifest(msgspec.Struct, kw_only=True):
    partition: int
    segments: list[Segment] = []

    @property
    def last(self) -> str:
        """The last entry archived (START when nothing is)."""
        return self.segments[-1].last if self.segments else START

    @property
    def first(self) -> str | None:
        return self.segments[0].first if self.segments else None

    @property
    def entries(self) -> int:
        return sum(s.count for s in self.segments)

    def after(self, cursor: str) -> list[Segment]:
        """The segments holding entries after `cursor`, in order."""
        at = parse_stream_id(cursor)
        return [s for s in self.segments if parse_stream_id(s.last) > at]

    def appended(self, encoded: Encoded) -> Manifest:
        segment = Segment(
            path=encoded.path,
            first=encoded.first,
            last=encoded.last,
            previous=encoded.previous,
            count=encoded.count,
            sha256=encoded.sha256,
            bytes=len(encoded.body),
            day=encoded.day,
        )
        return Manifest(partition=self.partition, segments=[*self.segments, segment])


_decoder = msgspec.json.Decoder(Manifest)


def manifest_path(partition: int) -> str:
    return f"{partition_dir(partition)}/_manifest.json"


def load_manifest(store: ArchiveStore, partition: int) -> Manifest:
    """The partition's manifest (empty when nothing was archived). Blocking: in a thread."""
    body = store.read(manifest_path(partition))
    return _decoder.decode(body) if body else Manifest(partition=partition)


def save_manifest(store: ArchiveStore, manifest: Manifest) -> None:
    store.write(manifest_path(manifest.partition), msgspec.json.encode(manifest))


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """The archive of one partition in brief, as cached in Redis."""

    first: str = ""
    last: str = ""
    entries: int = 0
    segments: int = 0
    bytes: int = 0


def summary(manifest: Manifest) -> Summary:
    return Summary(
        first=manifest.first or "",
        last=manifest.last if manifest.segments else "",
        entries=manifest.entries,
        segments=len(manifest.segments),
        bytes=sum(s.bytes for s in manifest.segments),
    )


async def cache_summary(redis: Redis, partition: int, found: Summary) -> None:
    await redis.hset(
        keys.archive_summary(partition),
        mapping=field_map({k: str(v) for k, v in msgspec.structs.asdict(found).items()}),
    )


async def cached_summaries(redis: Redis, partitions: int) -> list[Summary]:
    """Each partition's cached summary (empty where nothing was archived)."""
    async with redis.pipeline(transaction=False) as pipe:  # keys of several Cluster slots
        for partition in range(partitions):
            pipe.hgetall(keys.archive_summary(partition))
        replies = await pipe.execute()
    return [
        msgspec.convert(text_dict(reply), Summary, strict=False) if reply else Summary()
        for reply in replies
    ]
