"""The backlog: queued commands accepted but not finished, and how fast they finish.

Every partition counts its queued commands as they are accepted (enqueue.lua) and as they
finish (commit.lua, in the commit that gives them their outcome), so the difference is
exact whatever crashes. The web reads the counters at most every REFRESH_SECONDS, for
admission control (503 overloaded past a limit) and for a shopper's place in line.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from app.kernel import keys

REFRESH_SECONDS = 0.5
RATE_WINDOW_SECONDS = 10.0


@dataclass(frozen=True)
class BacklogReading:
    in_flight: int
    """Queued commands accepted and not finished yet."""
    finish_rate: float
    """Queued commands finished per second, over the last few seconds."""

    def estimate_seconds(self, ahead: int) -> float | None:
        if ahead <= 0:
            return 0.0
        if self.finish_rate <= 0:
            return None
        return round(ahead / self.finish_rate, 1)


class Backlog:
    def __init__(self, redis: Redis, partitions: int) -> None:
        self._redis = redis
        self._partitions = partitions
        self._reading = BacklogReading(0, 0.0)
        self._read_at = 0.0
        self._history: list[tuple[float, int]] = []
        self._refreshing: asyncio.Lock = asyncio.Lock()
        self._admitted = 0
        """Commands this process queued since the counters were last read."""

    async def current(self) -> BacklogReading:
        """The last reading, plus what this process queued since (so a burst between two
        readings is counted as it arrives)."""
        if time.monotonic() - self._read_at >= REFRESH_SECONDS:
            async with self._refreshing:  # one reader refreshes; the others wait for it
                if time.monotonic() - self._read_at >= REFRESH_SECONDS:
                    await self._refresh()
        reading = self._reading
        return BacklogReading(reading.in_flight + self._admitted, reading.finish_rate)

    def admitted(self) -> None:
        self._admitted += 1

    async def _refresh(self) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for partition in range(self._partitions):
                pipe.hmget(keys.queue_counters(partition), "accepted", "finished")
            replies = await pipe.execute()
        accepted = sum(int(a or 0) for a, _ in replies)
        finished = sum(int(f or 0) for _, f in replies)
        at = time.monotonic()
        self._history = [(t, f) for t, f in self._history if at - t <= RATE_WINDOW_SECONDS]
        self._history.append((at, finished))
        first_at, first_finished = self._history[0]
        rate = (finished - first_finished) / (at - first_at) if at > first_at else 0.0
        self._reading = BacklogReading(max(0, accepted - finished), rate)
        self._read_at = at
        self._admitted = 0
