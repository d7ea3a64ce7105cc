"""One owned partition's loop: read a batch, apply it, acknowledge it with the next read.

The owner reads as consumer `p<partition>` of the group, so whoever takes a partition over
re-reads the pending entries of the previous owner first (cursor `0`), then new ones (`>`).
A batch is acked only after its handler returned: delivery is at-least-once, and handlers
make the effect exactly-once. It reads only while its lease is surely held (LeaseClock in
kernel/leases.py). Redis trouble is waited out and the pending entries read again; a lost
lease ends the loop. A handler with a `tick(partition)` (and `tick_seconds` > 0) is called
that often between reads, while the lease is held: periodic work on the partition it owns
(the fulfilment process's sweeper). A paused group (kernel/pauses.py) reads nothing until
resumed: the loop acknowledges what it applied, keeps its lease and counts as making progress.

A handler may make its group itself (`ensure_group(partition)`, e.g. the projector's pass,
taking over from older groups) and may keep dead letters besides its own
(`parkings(partition)`: the pass's read models, each with its own); the loop loads and
serves them between batches as it does its own. `idle(partition)` is called when a read
finds nothing new (the pass catches up read models left behind).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from redis.asyncio import Redis

from app.kernel.backoff import RECONNECT
from app.kernel.batch_applier import BatchApplier
from app.kernel.consumer_health import PartitionHealth
from app.kernel.handlers import INFRA_ERRORS, LeaseLost, PartitionHandler
from app.kernel.lanes import KeyLanes
from app.kernel.leases import LeaseClock
from app.kernel.parking import Parking
from app.kernel.pauses import PauseCheck
from app.kernel.replication import NO_WAIT, Replication
from app.kernel.stream_reads import acknowledge, ensure_group, parse_entries, read_batch
from app.kernel.stream_trim import ConsumedTrim

log = logging.getLogger(__name__)


class PartitionLoop:
    def __init__(
        self,
        redis: Redis,
        handler: PartitionHandler,
        partition: int,
        stop: asyncio.Event,
        health: PartitionHealth,
        lease: LeaseClock,
        *,
        block_ms: int,
        batch: int,
        replication: Replication = NO_WAIT,
    ) -> None:
        self._redis = redis
        self._handler = handler
        self._partition = partition
        self._stop = stop
        self._health = health
        self._lease = lease
        self._block_ms = block_ms
        self._batch = batch
        self._replication = replication
        self._stream = handler.stream(partition)
        self._trim = ConsumedTrim.of(handler)
        self._pause = PauseCheck(redis, handler.group)
        self._parking = Parking(redis, handler, partition)
        self._parkings = [self._parking, *getattr(handler, "parkings", lambda _p: [])(partition)]
        self._ensure_group = getattr(handler, "ensure_group", None)
        self._idle = getattr(handler, "idle", None)
        self._applier = BatchApplier(redis, handler, partition, stop, health, self._parking)
        self._lanes = (
            KeyLanes(redis, handler, partition, health, self._applier)
            if hasattr(handler, "key_of")
            else None
        )
        self._tick_seconds: float = getattr(handler, "tick_seconds", 0.0)
        self._ticked = time.monotonic()
        self.waiting = False
        """In a blocking read for new entries: cancelling the loop now loses nothing (what
        the read takes, and the batch whose acks it carries, stay pending for whoever reads
        the partition next: at worst that batch is handled again, which handlers allow)."""

    async def _tick(self) -> None:
        if self._tick_seconds <= 0 or time.monotonic() - self._ticked < self._tick_seconds:
            return
        self._ticked = time.monotonic()
        await self._handler.tick(self._partition)  # type: ignore[attr-defined]

    async def run(self) -> None:
        try:
            await self._loop()
        finally:
            if self._lanes is not None:
                await self._lanes.drain()

    async def _loop(self) -> None:
        handler, partition, stream, stop = self._handler, self._partition, self._stream, self._stop
        lanes, health, parkings = self._lanes, self._health, self._parkings
        consumer = f"p{partition}"
        cursor = "0"  # our pending entries first (a previous owner's, after a takeover)
        outage = 0
        acks: list[str] = []
        """Entries done, acknowledged with the next read (one round trip for both)."""
        while not stop.is_set():
            try:
                if lanes is not None and lanes.broken.is_set():
                    # a lane hit Redis trouble or lost the lease: let the others finish,
                    # forget the failure, and either stop or re-read what is still pending
                    failure = await lanes.drain()
                    if not isinstance(failure, INFRA_ERRORS):
                        raise LeaseLost(stream)
                    raise failure
                if cursor == "0":
                    if lanes is not None:
                        await lanes.drain()  # nothing of ours may be running while re-read
                    if self._ensure_group is not None:
                        await self._ensure_group(partition)
                    else:
                        await ensure_group(self._redis, stream, handler.group)
                    for parking in parkings:
                        await parking.load()
                for parking in parkings:
                    await parking.serve()
                if await self._pause.paused():
                    if lanes is not None:
                        acks += lanes.take_done()
                    if acks:
                        await acknowledge(self._redis, handler, partition, acks)
                        acks = []
                    health.progressed()  # paused is not stuck
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=0.25)
                    continue
                budget = self._lease.read_budget()
                if budget <= 0:  # not sure the lease is still ours: wait for its renewal
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=0.05)
                    continue
                await self._tick()
                if lanes is not None:
                    acks += lanes.take_done()
                block = None if cursor != ">" else max(1, min(self._block_ms, int(budget * 1000)))
                self.waiting = block is not None
                try:
                    reply = await read_batch(
                        self._redis,
                        handler.group,
                        consumer,
                        stream,
                        cursor,
                        acks,
                        count=self._batch,
                        block=block,
                        trim=self._trim,
                        replication=self._replication,
                    )
                finally:
                    self.waiting = False
                acks = []
                entries = parse_entries(partition, reply)
                if cursor != ">":
                    if not entries:
                        cursor = ">"
                        continue
                    cursor = entries[-1].id
                outage = 0
                if not entries:
                    if self._idle is not None:
                        await self._idle(partition)
                    if lanes is None or lanes.idle:
                        health.progressed()  # nothing to do is not being stuck
                    continue
                if lanes is not None:
                    await lanes.dispatch(entries)
                    continue
                deferred = await self._applier.apply(entries)
                acks = [e.id for e in entries if e.id not in deferred]
                health.progressed()
            except LeaseLost:
                log.warning("%s partition %d: another owner took over", handler.group, partition)
                return
            except INFRA_ERRORS as exc:
                log.warning(
                    "%s partition %d: redis unavailable (%s)", handler.group, partition, exc
                )
                health.failed(f"{type(exc).__name__}: {exc}")
                acks = []  # applied, so merely read again and skipped
                cursor = "0"
                await RECONNECT.sleep(outage, stop)
                outage += 1
            except asyncio.CancelledError:
                raise
        with contextlib.suppress(*INFRA_ERRORS):
            await acknowledge(self._redis, handler, partition, acks)
