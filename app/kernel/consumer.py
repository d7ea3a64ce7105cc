"""Ordered consumption of partitioned streams: which partitions this process owns.

Each (group, partition) has one owner at a time (a lease, kernel/leases.py). This module
keeps the leases: it renews them, takes free partitions up to this process's share, gives up
what is lost, stuck or over its share, and reports stalls. Each owned partition runs its own
loop (kernel/partition_loop.py): reads and acknowledgements (kernel/stream_reads.py), a
batch applied with retries and dead letters (kernel/batch_applier.py), per-key lanes for a
KeyedHandler (kernel/lanes.py), its health (kernel/consumer_health.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from app.kernel.batch_applier import MAX_ATTEMPTS, dead_letter
from app.kernel.consumer_health import (
    GIVE_UP_SECONDS,
    STALL_SECONDS,
    PartitionHealth,
    Stall,
    record_error,
)
from app.kernel.dead_letters import DeadLetter
from app.kernel.handlers import INFRA_ERRORS, Entry, KeyedHandler, LeaseLost, PartitionHandler
from app.kernel.leases import LeaseClock, Leases
from app.kernel.partition_loop import PartitionLoop
from app.kernel.replication import NO_WAIT, Replication
from app.kernel.stream_reads import acknowledge, ensure_group, parse_entries

__all__ = [
    "INFRA_ERRORS",
    "MAX_ATTEMPTS",
    "DeadLetter",
    "Entry",
    "KeyedHandler",
    "LeaseLost",
    "PartitionHandler",
    "PartitionedConsumer",
    "Stall",
    "acknowledge",
    "dead_letter",
    "ensure_group",
    "parse_entries",
    "record_error",
]

log = logging.getLogger(__name__)

BATCH = 200
BLOCK_MS = 1000
HANDOFF_SECONDS = 3.0
"""How long after the number of members changed partitions may still be changing hands (a
process over its share stops them within its batch in hand, then releases them)."""
HANDOFF_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class _Owned:
    task: asyncio.Task[None]
    stop: asyncio.Event
    health: PartitionHealth
    lease: LeaseClock
    loop: PartitionLoop


class PartitionedConsumer:
    """Runs handlers over the partitions this process holds leases on."""

    def __init__(
        self,
        redis: Redis,
        handlers: list[PartitionHandler],
        partitions: int,
        leases: Leases,
        members: Callable[[], Awaitable[int]],
        *,
        block_ms: int = BLOCK_MS,
        batch: int = BATCH,
        stall_seconds: float = STALL_SECONDS,
        give_up_seconds: float = GIVE_UP_SECONDS,
        replication: Replication = NO_WAIT,
    ) -> None:
        """`replication`: what each read of a partition waits for (kernel/stream_reads.py)."""
        self._redis = redis
        self._replication = replication
        self._handlers = {h.group: h for h in handlers}
        self._partitions = partitions
        self._leases = leases
        self._members = members
        self._block_ms = block_ms
        self._batch = batch
        self._owned: dict[tuple[str, int], _Owned] = {}
        self._stall_seconds = stall_seconds
        self._give_up_seconds = give_up_seconds
        self._resting: dict[tuple[str, int], float] = {}
        """Partitions given up for being stuck, and until when not to take them again."""
        self._members_seen = 0
        self._handoff_until = 0.0

    @property
    def owned(self) -> list[tuple[str, int]]:
        return sorted(key for key, owned in self._owned.items() if not owned.task.done())

    def stalls(self) -> list[Stall]:
        """Owned partitions with work and no progress for longer than the stall bound."""
        found = []
        for (group, partition), owned in sorted(self._owned.items()):
            stuck = owned.health.stuck_for()
            if stuck > self._stall_seconds:
                found.append(Stall(group, partition, round(stuck, 1), owned.health.error))
        return found

    async def run(self, stop: asyncio.Event, tick: float = 1.0) -> None:
        """Rebalance every `tick`; while partitions change hands (for HANDOFF_SECONDS after
        the number of members changed) and this process is short of its share, every
        HANDOFF_POLL_SECONDS, so a partition another process gives up waits for no tick."""
        try:
            while not stop.is_set():
                short = False
                try:
                    short = await self.rebalance()
                except INFRA_ERRORS as exc:
                    log.warning("lease upkeep failed, will retry: %s", exc)
                handing_over = short and time.monotonic() < self._handoff_until
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        stop.wait(),
                        timeout=min(tick, HANDOFF_POLL_SECONDS) if handing_over else tick,
                    )
        finally:
            await self.release_all()

    async def rebalance(self) -> bool:
        """Keep (renew) every lease first, then stop what is lost, stuck or over this
        process's share, all at once, then take free partitions up to the share: a slow stop
        must not hold up the renewals of the partitions this process keeps. Whether this
        process is still short of its share."""
        members = max(1, await self._members())
        if members != self._members_seen:
            self._members_seen = members
            self._handoff_until = time.monotonic() + HANDOFF_SECONDS
        target = math.ceil(self._partitions / members)
        kept: dict[str, list[int]] = {group: [] for group in self._handlers}
        stopping: list[Awaitable[None]] = []
        try:
            await self._renew(kept, stopping)
            for group, mine in kept.items():
                stopping += [self._stop(group, p, release=True) for p in mine[target:]]
        finally:
            await asyncio.gather(*stopping)
        short = False
        for group, mine in kept.items():
            count = min(len(mine), target)
            for partition in range(self._partitions):
                if count >= target:
                    break
                if (group, partition) in self._owned:
                    continue
                if self._resting.get((group, partition), 0.0) > time.monotonic():
                    continue
                asked_at = time.monotonic()
                if await self._leases.acquire(group, partition):
                    self._start(group, partition, asked_at)
                    count += 1
            short = short or count < target
        return short

    async def _renew(self, kept: dict[str, list[int]], stopping: list[Awaitable[None]]) -> None:
        """Renew the leases of the partitions worth keeping (into `kept`); the stops of the
        others go to `stopping`."""
        for (group, partition), owned in sorted(self._owned.items()):
            if owned.health.stuck_for() > self._give_up_seconds:
                log.error(
                    "%s partition %d made no progress for %.0f s (%s): giving it up",
                    group,
                    partition,
                    owned.health.stuck_for(),
                    owned.health.error or "no error",
                )
                self._resting[(group, partition)] = time.monotonic() + self._stall_seconds
                stopping.append(self._stop(group, partition, release=True, wait=1.0))
                continue
            asked_at = time.monotonic()
            if owned.task.done() or not await self._leases.renew(group, partition):
                stopping.append(self._stop(group, partition, release=False))
                continue
            owned.lease.held_since(asked_at)
            kept[group].append(partition)

    def _start(self, group: str, partition: int, asked_at: float) -> None:
        stop = asyncio.Event()
        health = PartitionHealth()
        lease = LeaseClock(self._leases.ttl_seconds)
        lease.held_since(asked_at)
        loop = PartitionLoop(
            self._redis,
            self._handlers[group],
            partition,
            stop,
            health,
            lease,
            block_ms=self._block_ms,
            batch=self._batch,
            replication=self._replication,
        )
        task = asyncio.create_task(loop.run(), name=f"{group}:p{partition}")
        self._owned[(group, partition)] = _Owned(task, stop, health, lease, loop)
        log.info("took %s partition %d", group, partition)

    async def _stop(self, group: str, partition: int, *, release: bool, wait: float = 10.0) -> None:
        """Stop a partition's task (it finishes its batch, up to `wait` seconds)."""
        owned = self._owned.pop((group, partition))  # at once: the partition is no longer ours
        owned.stop.set()
        if owned.loop.waiting:  # idle in a blocking read: no need to wait for it to time out
            owned.task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(owned.task), timeout=wait)
        except TimeoutError:
            owned.task.cancel()
        except asyncio.CancelledError:
            if not owned.task.cancelled() or _being_cancelled():
                raise
        except Exception:  # the task already logged its failure
            pass
        if release:
            await self._leases.release(group, partition)
        log.info("gave up %s partition %d", group, partition)

    async def release_all(self) -> None:
        """Stop every partition at once (each finishes its batch), then give the leases back."""
        for owned in self._owned.values():
            owned.stop.set()
        await asyncio.gather(
            *(self._stop_quietly(group, partition) for group, partition in list(self._owned))
        )

    async def _stop_quietly(self, group: str, partition: int) -> None:
        with contextlib.suppress(*INFRA_ERRORS):
            await self._stop(group, partition, release=True)


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
