"""Per-key lanes: a KeyedHandler's entries of one partition, in order per key only.

Entries of different keys run concurrently (up to `MAX_IN_FLIGHT`), so one slow entry
(a payment waiting on a gateway) holds up only the entries of its own key. Finished entries
are acknowledged together: when the stream has nothing new, and whenever a batch arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable

from redis.asyncio import Redis

from app.kernel.batch_applier import BatchApplier
from app.kernel.consumer_health import PartitionHealth
from app.kernel.handlers import INFRA_ERRORS, Entry, LeaseLost, PartitionHandler
from app.kernel.stream_reads import acknowledge

MAX_IN_FLIGHT = 256
"""Entries a keyed handler may have running at once per partition."""


class KeyLanes:
    """Chains of entries, one per key, for a KeyedHandler on one partition."""

    def __init__(
        self,
        redis: Redis,
        handler: PartitionHandler,
        partition: int,
        health: PartitionHealth,
        applier: BatchApplier,
    ) -> None:
        self._redis = redis
        self._health = health
        self._applier = applier
        self._handler = handler
        self._key_of: Callable[[Entry], str | None] = handler.key_of  # type: ignore[attr-defined]
        self._partition = partition
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._done: list[str] = []
        self.broken = asyncio.Event()
        self.failure: BaseException | None = None

    async def dispatch(self, entries: list[Entry]) -> None:
        for entry in entries:
            key = self._key_of(entry) if entry.fields else None
            if key is None:
                self._done.append(entry.id)
                continue
            await self._slots.acquire()
            task = asyncio.create_task(self._run(entry, self._tails.get(key)))
            self._tails[key] = task
            self._running.add(task)
            task.add_done_callback(functools.partial(self._finished, key))

    @property
    def idle(self) -> bool:
        return not self._running

    def take_done(self) -> list[str]:
        """The entries finished since last asked (to acknowledge with the next read)."""
        done, self._done = self._done, []
        if done:
            self._health.progressed()
        return done

    async def flush(self) -> None:
        done = self.take_done()
        try:
            await acknowledge(self._redis, self._handler, self._partition, done)
        except INFRA_ERRORS:
            self._done = done + self._done
            raise

    def _finished(self, key: str, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._tails.get(key) is task:
            del self._tails[key]
        self._slots.release()

    async def _run(self, entry: Entry, after: asyncio.Task[None] | None) -> None:
        if after is not None:
            await asyncio.wait({after})  # its own failure is its own business
        if self.broken.is_set():
            return  # left pending: read again once the partition is back in order
        try:
            deferred = await self._applier.apply([entry])
            if entry.id not in deferred:
                self._done.append(entry.id)
        except (LeaseLost, *INFRA_ERRORS) as exc:
            self._health.failed(f"{type(exc).__name__}: {exc}")
            self.failure = exc
            self.broken.set()

    async def drain(self) -> BaseException | None:
        """Wait for every running entry; clear and return the failure that broke the lanes."""
        if self._running:
            await asyncio.wait(set(self._running))
        failure, self.failure = self.failure, None
        self.broken.clear()
        if failure is None:
            with contextlib.suppress(*INFRA_ERRORS):
                await self.flush()
        return failure
