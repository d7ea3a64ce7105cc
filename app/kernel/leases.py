"""Leases: at most one live owner per (consumer group, partition), so order holds."""

from __future__ import annotations

from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.scripts import load_script

LEASE_MS = 10_000
_SCRIPT = load_script(__file__, "lease.lua")


class Leases:
    def __init__(self, redis: Redis, owner: str, ttl_ms: int = LEASE_MS) -> None:
        self._redis = redis
        self.owner = owner
        self._ttl_ms = ttl_ms

    @property
    def ttl_seconds(self) -> float:
        return self._ttl_ms / 1000

    async def _call(self, action: str, group: str, partition: int) -> bool:
        held = await _SCRIPT(
            self._redis, [keys.lease(group, partition)], [action, self.owner, self._ttl_ms]
        )
        return bool(held)

    async def acquire(self, group: str, partition: int) -> bool:
        return await self._call("acquire", group, partition)

    async def renew(self, group: str, partition: int) -> bool:
        return await self._call("renew", group, partition)

    async def take(self, group: str, partition: int) -> bool:
        """Hold the lease even if another owner does: that owner stops at its next renewal
        and waits until the lease is released."""
        return await self._call("take", group, partition)

    async def release(self, group: str, partition: int) -> bool:
        return await self._call("release", group, partition)
