"""Paused consumers: an operator stops a consumer group reading (e.g. while someone looks at a
poison event) and lets it go on later.

The pause is stored in Redis (`consumers:paused`, a field per paused group) so every process
of that group honours it: a partition loop checks it before each read (`PauseCheck`, at most
every CHECK_SECONDS) and, while paused, reads nothing, acknowledges what it had applied,
keeps its lease and counts as making progress (a pause is not a stall).
"""

from __future__ import annotations

import time

import msgspec
from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.redis_types import text_dict

CHECK_SECONDS = 0.5
"""How stale a partition loop's view of the pause may be."""


class Pause(msgspec.Struct, frozen=True):
    group: str
    by: str
    at: float
    reason: str = ""


_pause = msgspec.json.Decoder(Pause)


async def pause(redis: Redis, group: str, by: str, reason: str = "") -> None:
    made = Pause(group, by, time.time(), reason)
    await redis.hset(keys.paused_consumers(), group, msgspec.json.encode(made))


async def resume(redis: Redis, group: str) -> bool:
    """True if it was paused."""
    return bool(await redis.hdel(keys.paused_consumers(), group))


async def paused(redis: Redis) -> dict[str, Pause]:
    """Every paused group and its pause, in one round trip."""
    raw = text_dict(await redis.hgetall(keys.paused_consumers()))
    return {group: _pause.decode(value) for group, value in raw.items()}


class PauseCheck:
    """Whether one group is paused, asked of Redis at most every CHECK_SECONDS."""

    def __init__(self, redis: Redis, group: str, every: float = CHECK_SECONDS) -> None:
        self._redis = redis
        self._group = group
        self._every = every
        self._checked = float("-inf")
        self._paused = False

    async def paused(self) -> bool:
        now = time.monotonic()
        if now - self._checked >= self._every:
            self._paused = await self._redis.hget(keys.paused_consumers(), self._group) is not None
            self._checked = now
        return self._paused
