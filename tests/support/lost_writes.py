"""Writes a failover lost, by hand: a key set back to what a lagging replica held, a dedup
record that never reached it, a stream entry it never got.

Redis replication is asynchronous, so a replica that takes over holds its master's writes up
to some point: everything after it is gone on that node, while the other nodes keep theirs.
A test takes a `Snapshot` of a partition's keys where the replica would be, lets the stack
go on, then `lose`s what came after on those keys (and deletes the dedup records and the
stream entries the lost writes made), so the stack carries on from the state a failover
leaves. DUMP/RESTORE need bytes, so this has a client of its own that does not decode.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from app.adapters.redis_client import cluster_url
from app.config import Settings
from app.kernel.messages import StoredEvent

_stored = msgspec.json.Decoder(StoredEvent)


def raw_client(settings: Settings) -> Redis:
    url, named_cluster = cluster_url(settings.redis_url)
    if named_cluster or settings.redis_cluster:
        client: Redis = RedisCluster.from_url(url)  # type: ignore[assignment]
        return client
    return Redis.from_url(url)


@dataclass
class Snapshot:
    """Keys as they were: each one's DUMP and its time to live (ms; -1 none), or None."""

    kept: dict[str, tuple[bytes, int] | None] = field(default_factory=dict)


async def snapshot(settings: Settings, keys: Iterable[str]) -> Snapshot:
    client = raw_client(settings)
    try:
        taken = Snapshot()
        for key in keys:
            dumped = await client.dump(key)
            taken.kept[key] = (dumped, int(await client.pttl(key))) if dumped else None
        return taken
    finally:
        await client.aclose()


async def lose(
    settings: Settings,
    taken: Snapshot,
    *,
    records: Iterable[str] = (),
    entries: Iterable[tuple[str, str]] = (),
) -> None:
    """Set the snapshot's keys back, delete `records` (keys written after it) and the stream
    `entries` ((stream, entry id)) the lost writes added."""
    client = raw_client(settings)
    try:
        for key, kept in taken.kept.items():
            if kept is None:
                await client.delete(key)
            else:
                dumped, ttl = kept
                await client.restore(key, max(ttl, 0), dumped, replace=True)
        for key in records:
            await client.delete(key)
        for stream, entry_id in entries:
            await client.xdel(stream, entry_id)
    finally:
        await client.aclose()


async def entries_of(
    redis: Redis, stream: str, event_type: str, order_id: str
) -> list[tuple[str, str]]:
    """(stream, entry id) of the events of one type about one order in a stream."""
    found = []
    for entry_id, fields in await redis.xrange(stream):
        if fields.get("t") != event_type:
            continue
        data = msgspec.json.decode(_stored.decode(fields["e"]).data)
        if data.get("order_id") == order_id:
            found.append((stream, entry_id))
    return found
