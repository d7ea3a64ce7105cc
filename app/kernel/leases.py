"""Leases: at most one live owner per (consumer group, partition), so order holds."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.scripts import load_script

LEASE_MS = 10_000
LEASE_TRUSTED = 0.8
"""Of a lease's time to live, how much an owner counts on (from when it asked for it)."""
READ_MARGIN_SECONDS = 0.2
"""A read must be answered this long before the owner stops counting on its lease."""
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


class LeaseClock:
    """Until when an owner may still read a partition's entries.

    An entry delivered after the lease ran out may reach the partition's consumer after a
    new owner looked for that consumer's pending entries (it does so once, when it takes
    the partition over): nobody would apply it. So an owner reads only while its lease is
    surely held, and a blocking read never outlasts that.
    """

    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self.held_until = 0.0

    def held_since(self, asked_at: float) -> None:
        """The lease was acquired or renewed by a call made at `asked_at` (monotonic)."""
        self.held_until = asked_at + self._ttl * LEASE_TRUSTED

    def read_budget(self) -> float:
        """Seconds a read may still take (<= 0: do not read now)."""
        return self.held_until - time.monotonic() - READ_MARGIN_SECONDS
