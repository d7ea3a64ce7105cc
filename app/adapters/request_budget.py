"""A request budget per client: at most N requests per calendar minute (a fixed window)."""

from __future__ import annotations

import math

from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.errors import ProblemError

WINDOW_SECONDS = 60


class TooManyRequests(ProblemError):
    status = 429

    def __init__(self, per_minute: int, retry_after: int) -> None:
        super().__init__(
            "too_many_requests",
            f"At most {per_minute} a minute per client: try again in {retry_after} s",
        )
        self.headers = {"Retry-After": str(retry_after)}


class RequestBudget:
    def __init__(self, redis: Redis, name: str, per_minute: int) -> None:
        self._redis = redis
        self.name = name
        self.per_minute = per_minute

    async def spend(self, client: str, now: float) -> None:
        """Count one request of `client`; TooManyRequests once its minute's budget is spent."""
        window = int(now // WINDOW_SECONDS)
        key = keys.request_budget(self.name, client, window)
        async with self._redis.pipeline(transaction=True) as tx:
            tx.incr(key)
            tx.expire(key, 2 * WINDOW_SECONDS)
            count, _ = await tx.execute()
        if int(count) > self.per_minute:
            retry_after = max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
            raise TooManyRequests(self.per_minute, retry_after)
