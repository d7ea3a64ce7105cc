"""The read side of tallies: several by id in one round trip, read through their row."""

from __future__ import annotations

from redis.asyncio import Redis

from tests.domain_example.projection import ROW, TallyRow, tally_key


async def tallies(read: Redis, tally_ids: list[str]) -> list[TallyRow | None]:
    async with read.pipeline(transaction=False) as pipe:
        for tally_id in tally_ids:
            pipe.hgetall(tally_key(tally_id))
        records = await pipe.execute()
    return [ROW.read(record) if record else None for record in records]
