"""Worker heartbeats: every process says it is alive (and what it holds) every few seconds."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

import msgspec
from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.consumer import Stall
from app.kernel.partitions import new_id
from app.kernel.redis_types import text_dict

STALE_AFTER_SECONDS = 6.0
"""Three missed beats: a dead worker stops counting before its leases (10 s) expire."""


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    id: str
    pid: int
    host: str
    at: float
    info: dict[str, int | str] = {}
    stalls: list[Stall] = []
    warnings: list[str] = []


_decoder = msgspec.json.Decoder(Heartbeat)


def worker_id(kind: str) -> str:
    return f"{kind}-{socket.gethostname()}-{os.getpid()}-{new_id()[-6:]}"


class HeartbeatPublisher:
    def __init__(self, redis: Redis, kind: str, ident: str) -> None:
        self._redis = redis
        self.kind = kind
        self.id = ident
        self.info: Callable[[], dict[str, int | str]] = dict
        """What the status page shows about this process; the process sets it."""
        self.stalls: Callable[[], list[Stall]] = list
        """Partitions this process owns and cannot move forward."""
        self.warnings: Callable[[], list[str]] = list
        """What an operator should know (e.g. the Redis it runs on is not durable)."""

    async def beat(self) -> None:
        beat = Heartbeat(
            kind=self.kind,
            id=self.id,
            pid=os.getpid(),
            host=socket.gethostname(),
            at=time.time(),
            info=self.info(),
            stalls=self.stalls(),
            warnings=self.warnings(),
        )
        await self._redis.hset(keys.heartbeats(), self.id, msgspec.json.encode(beat))

    async def remove(self) -> None:
        await self._redis.hdel(keys.heartbeats(), self.id)


async def live_heartbeats(
    redis: Redis, *, prune: bool = True, stale_after: float = STALE_AFTER_SECONDS
) -> list[Heartbeat]:
    """Heartbeats younger than `stale_after`; much older ones are removed (if `prune`)."""
    raw = text_dict(await redis.hgetall(keys.heartbeats()))
    now = time.time()
    live, dead = [], []
    for field, value in raw.items():
        try:
            beat = _decoder.decode(value)
        except msgspec.DecodeError:
            dead.append(field)
            continue
        if now - beat.at > max(stale_after, STALE_AFTER_SECONDS) * 4:
            dead.append(field)
        elif now - beat.at <= stale_after:
            live.append(beat)
    if prune and dead:
        await redis.hdel(keys.heartbeats(), *dead)
    return sorted(live, key=lambda b: (b.kind, b.id))
