"""How a consumer's partitions fare: progress, stalls, and the errors it met (counted).

A partition with work and no progress for `STALL_SECONDS` is reported stalled (the heartbeat
carries it to the status page); after `GIVE_UP_SECONDS` its owner gives its lease up.
"""

from __future__ import annotations

import time

import msgspec
from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.redis_types import field_map

STALL_SECONDS = 10.0
"""A partition with work and no progress for this long is reported stalled..."""
GIVE_UP_SECONDS = 30.0
"""... and after this long its owner gives its lease up (another process, or this one a
little later, starts it afresh)."""


class Stall(msgspec.Struct, frozen=True):
    """A partition whose owner has had work and made no progress for a while."""

    group: str
    partition: int
    seconds: float
    error: str


class PartitionHealth:
    """When a partition last made progress (applied a batch, or found nothing to do)."""

    def __init__(self) -> None:
        self.progress_at = time.monotonic()
        self.error = ""

    def progressed(self) -> None:
        self.progress_at = time.monotonic()
        self.error = ""

    def failed(self, error: str) -> None:
        self.error = error[:300]

    def stuck_for(self) -> float:
        return time.monotonic() - self.progress_at


async def record_error(redis: Redis, group: str, error: str, *, dead_letter: bool) -> None:
    """Count a failed attempt (or a dead letter) in the group's health hash, with the error."""
    mapping = {"last_error": error[:500], "last_error_at": str(time.time())}
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hset(keys.consumer_health(group), mapping=field_map(mapping))
        pipe.hincrby(keys.consumer_health(group), "dead_letters" if dead_letter else "retries", 1)
        await pipe.execute()
