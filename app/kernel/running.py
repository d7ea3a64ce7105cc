"""Long-running commands, per partition: those a process finishes after their commit
(PlaceOrder), from their start until their process has settled them; and `tracked` steps of a
process (a hold of stock), from their commit until the process has settled them.

Each commit that changes a long-running command's status scores it in `{pN}:running` with the
time of the change (a status write's `track`, commit.lua), its final status included; a
tracked step is scored when its commit lands (its request's `track`). A process's sweeper
asks for the ones whose last change is older than a deadline — still running (a step whose
write a failover lost, so its next event never comes) or finished and not yet checked —
looks at each from its aggregates' state, drives it on or repairs what it finds, and removes
what it settled. Entries older than the statuses' TTL are dropped on the way (their status
and their steps' dedup records are gone: nothing could be settled from them any more).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.redis_types import text_list


class RunningCommands:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl_ms = ttl_seconds * 1000

    async def due(self, partition: int, quiet_seconds: float, limit: int = 100) -> list[str]:
        """Command ids whose last change is over `quiet_seconds` old, oldest first."""
        key = keys.running(partition)
        now_ms = int(time.time() * 1000)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(key, "-inf", f"({now_ms - self._ttl_ms}")
            pipe.zrangebyscore(key, "-inf", now_ms - int(quiet_seconds * 1000), start=0, num=limit)
            _, found = await pipe.execute()
        return text_list(found)

    async def update(
        self, partition: int, settled: Sequence[str], again: Sequence[str] = ()
    ) -> None:
        """Remove what was settled; look at `again` one deadline from now (one round trip)."""
        if not settled and not again:
            return
        key = keys.running(partition)
        async with self._redis.pipeline(transaction=False) as pipe:
            if settled:
                pipe.zrem(key, *settled)
            if again:
                now_ms = int(time.time() * 1000)
                pipe.zadd(key, dict.fromkeys(again, now_ms), xx=True)
            await pipe.execute()
