"""Exponential backoff: the one way anything here waits before trying again."""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delays `first`, `first * factor`, ... capped at `cap`; `jitter` draws each delay
    uniformly below that (so racers spread out instead of colliding again)."""

    first: float
    cap: float
    factor: float = 2.0
    jitter: bool = False

    def delay(self, attempt: int) -> float:
        """The wait before retry number `attempt` (0 for the first retry)."""
        delay = min(self.cap, self.first * self.factor ** min(attempt, 32))
        return random.uniform(0, delay) if self.jitter else delay

    async def sleep(self, attempt: int, stop: asyncio.Event | None = None) -> None:
        """Wait before retry `attempt`; return early if `stop` is set."""
        delay = self.delay(attempt)
        if stop is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)


RECONNECT = Backoff(first=0.1, cap=2.0)
"""Waiting for Redis to come back."""
