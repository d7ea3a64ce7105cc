"""A web process's share of the status page's history (history.py): every BUCKET_SECONDS its
open sockets, and — the first process to get to a bucket — each consumer's lag."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis

from app.consumers import watched_consumers
from app.kernel import keys
from app.kernel.consumer import INFRA_ERRORS
from app.kernel.redis_types import field_map
from app.observability.history import BUCKET_SECONDS, KEEP_SECONDS, bucket_of
from app.queries.admin_status import consumers

log = logging.getLogger(__name__)


class HistorySampler:
    """A web process's share of the history: its sockets and (once per bucket) the lags."""

    def __init__(
        self,
        write: Redis,
        read: Redis,
        partitions: int,
        process_id: str,
        sockets: Callable[[], int],
    ) -> None:
        self._write = write
        self._read = read
        self._partitions = partitions
        self._id = process_id
        self._sockets = sockets

    async def sample(self, now: float | None = None) -> None:
        bucket = bucket_of(time.time() if now is None else now)
        key = keys.history_samples(bucket)
        async with self._read.pipeline(transaction=False) as pipe:
            pipe.hset(key, f"ws:{self._id}", self._sockets())
            pipe.hsetnx(key, "lag_at", str(time.time()))
            pipe.expire(key, KEEP_SECONDS)
            _, first, _ = await pipe.execute()
        if not first:
            return  # another web process samples the lags of this bucket
        found = await consumers(self._write, self._read, watched_consumers(), self._partitions)
        fields: dict[str, float] = {f"lag:{c.name}": c.lag_events for c in found}
        fields.update({f"lag_s:{c.name}": c.lag_seconds for c in found})
        if fields:
            await self._read.hset(key, mapping=field_map(fields))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sample()
            except INFRA_ERRORS as exc:
                log.warning("history: not sampled (redis: %s)", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=BUCKET_SECONDS)
