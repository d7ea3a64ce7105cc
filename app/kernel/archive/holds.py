"""Holds: a reader that goes through a partition's events from an old position (a rebuild,
the audit) says which entries it still needs, and the trim keeps them. A hold lasts its time
to live unless renewed, so a holder that dies lets go by itself."""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.scripts import load_script

HOLD_MS = 60_000
_SCRIPT = load_script(__file__, "hold.lua")


class ArchiveHolds:
    def __init__(self, redis: Redis, holder: str, ttl_ms: int = HOLD_MS) -> None:
        self._redis = redis
        self.holder = holder
        self._ttl_ms = ttl_ms

    async def hold(self, partition: int, position: str) -> None:
        """Keep the partition's entries from `position` on (renews the hold)."""
        await _SCRIPT(
            self._redis,
            [keys.archive_holds(partition)],
            ["hold", self.holder, position, self._ttl_ms],
        )

    async def release(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            await _SCRIPT(self._redis, [keys.archive_holds(partition)], ["release", self.holder])
