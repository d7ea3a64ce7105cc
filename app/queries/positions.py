"""What position a read reflects, and waiting (bounded) for a position a client asks for."""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec
from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.backoff import Backoff
from app.kernel.positions import ZERO, StreamId, format_position, parse, parse_stream_id, reached
from app.kernel.redis_types import text

CATCHING_UP = Backoff(first=0.005, cap=0.1)


class ReadPosition(msgspec.Struct, frozen=True):
    token: str
    stale: bool = False


class BadPosition(ValueError):
    pass


async def checkpoints(
    read: Redis, projections: Sequence[str], partitions: int
) -> dict[int, StreamId]:
    """Per partition, the earliest checkpoint among the projections a view is built from."""
    names = [keys.checkpoint(name, p) for name in projections for p in range(partitions)]
    async with read.pipeline(transaction=False) as pipe:  # one slot each: no MGET on a Cluster
        for name in names:
            pipe.get(name)
        values = await pipe.execute()
    result: dict[int, StreamId] = {}
    for index, value in enumerate(values):
        partition = index % partitions
        sid = parse_stream_id(text(value)) if value else ZERO
        result[partition] = min(result.get(partition, sid), sid)
    return result


async def wait_for(
    read: Redis,
    projections: Sequence[str],
    partitions: int,
    min_position: str | None,
    wait_seconds: float,
) -> ReadPosition:
    """Wait until the projections reach `min_position` (at most `wait_seconds`); say where."""
    wanted = None
    if min_position:
        try:
            wanted = parse(min_position)
        except ValueError as exc:
            raise BadPosition(str(exc)) from None
        if any(partition >= partitions for partition in wanted):
            raise BadPosition(f"this service has partitions 0 to {partitions - 1}")
    deadline = time.monotonic() + wait_seconds
    attempt = 0
    while True:
        current = await checkpoints(read, projections, partitions)
        if wanted is None or reached(current, wanted):
            return ReadPosition(format_position(current))
        if time.monotonic() >= deadline:
            return ReadPosition(format_position(current), stale=True)
        await CATCHING_UP.sleep(attempt)
        attempt += 1
