"""Operator tools: rebuild a projection from its streams; replay dead-lettered entries."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.consumer import DeadLetter, Entry, PartitionHandler, ensure_group
from app.kernel.leases import Leases
from app.kernel.projection import group_name
from app.kernel.redis_types import stream_entries, text_list

_letter = msgspec.json.Decoder(DeadLetter)


class ProjectionBusy(RuntimeError):
    pass


async def rebuild_projection(
    write: Redis, read: Redis, name: str, partitions: int, stream: Callable[[int], str]
) -> int:
    """Forget a read model and replay its streams from the start. Returns keys deleted.

    Holds every lease of the projection while it resets, so it refuses to run while a
    projector owns any partition of it; the projectors rebuild it once they take over again.
    """
    group = group_name(name)
    leases = Leases(write, "rebuild")
    held: list[int] = []
    try:
        for partition in range(partitions):
            if not await leases.acquire(group, partition):
                raise ProjectionBusy(
                    f"a projector owns {group} partition {partition}: stop the projectors first"
                )
            held.append(partition)
        deleted = 0
        cursor = 0
        while True:
            cursor, found = await read.scan(cursor, match=f"rm:{name}:*", count=1000)
            names = text_list(found)
            if names:
                deleted += int(await read.delete(*names))
            if cursor == 0:
                break
        for partition in range(partitions):
            await ensure_group(write, stream(partition), group)
            await write.xgroup_setid(stream(partition), group, "0")
        return deleted
    finally:
        for partition in held:
            await leases.release(group, partition)


async def replay_dead_letters(write: Redis, handler: PartitionHandler, partitions: int) -> int:
    """Run a handler again on its dead letters (after a fix); those that pass are removed."""
    dead = keys.dead_letters(handler.group)
    replayed = 0
    for _stream, letter_id, fields in stream_entries([(dead, await write.xrange(dead))]):
        letter = _letter.decode(fields["e"])
        partition = next((p for p in range(partitions) if handler.stream(p) == letter.stream), None)
        if partition is None:
            continue
        await handler.handle(partition, [Entry(letter.entry_id, partition, letter.fields)])
        await write.xdel(dead, letter_id)
        replayed += 1
    return replayed
