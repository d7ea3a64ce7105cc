"""The read side of tallies: several by id in one round trip, read through their row."""

from __future__ import annotations

from app.kernel.read_side import ReadSide
from tests.domain_example.projection import ROW, TallyRow, tally_key


async def tallies(read: ReadSide, tally_ids: list[str]) -> list[TallyRow | None]:
    """A tally's row is in its aggregate's partition."""
    async with read.redis.pipeline(transaction=False) as pipe:
        for tally_id in tally_ids:
            pipe.hgetall(tally_key(read.partition_of(tally_id), tally_id))
        records = await pipe.execute()
    return [ROW.read(record) if record else None for record in records]
