"""Ordered consumption of partitioned streams: leases, consumer groups, retries, dead letters.

Each (group, partition) has one owner at a time (a lease). The owner reads as consumer
`p<partition>` of the group, so whoever takes a partition over re-reads the pending entries of
the previous owner first. A batch is acked only after its handler returned: delivery is
at-least-once, and handlers make the effect exactly-once. Every stream read names one stream,
so it runs on Redis Cluster too.

A batch holding traced entries (a `tp` field) is one span, linked to each entry's context and
current while the handler runs; the handler's own span for each traced entry continues that
entry's trace and links back to the batch (kernel/tracing.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

import msgspec
from opentelemetry.trace import Span
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from app.kernel import keys, tracing
from app.kernel.backoff import RECONNECT, Backoff
from app.kernel.dead_letters import DeadLetter, DeadLetters
from app.kernel.handlers import INFRA_ERRORS, Entry, KeyedHandler, LeaseLost, PartitionHandler
from app.kernel.leases import Leases
from app.kernel.parking import Parking
from app.kernel.redis_types import field_map, stream_entries
from app.kernel.stream_trim import ConsumedTrim

__all__ = [
    "INFRA_ERRORS",
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
    "record_error",
]

log = logging.getLogger(__name__)

BATCH = 200
BLOCK_MS = 1000
MAX_ATTEMPTS = 4
MAX_IN_FLIGHT = 256
"""Entries a keyed handler may have running at once per partition."""
HANDLER_RETRY = Backoff(first=0.05, cap=2.0)
STALL_SECONDS = 10.0
"""A partition with work and no progress for this long is reported stalled..."""
GIVE_UP_SECONDS = 30.0
"""... and after this long its owner gives its lease up (another process, or this one a
little later, starts it afresh)."""
LEASE_TRUSTED = 0.8
"""Of a lease's time to live, how much an owner counts on (from when it asked for it)."""
READ_MARGIN_SECONDS = 0.2
"""A read must be answered this long before the owner stops counting on its lease."""


class Stall(msgspec.Struct, frozen=True):
    """A partition whose owner has had work and made no progress for a while."""

    group: str
    partition: int
    seconds: float
    error: str


class PartitionHealth:
    """When a partition last made progress (applied a batch, or found nothing to do)."""

    def __init__(self) -> None:
        self.progress_at = time.monotonic()
        self.error = ""

    def progressed(self) -> None:
        self.progress_at = time.monotonic()
        self.error = ""

    def failed(self, error: str) -> None:
        self.error = error[:300]

    def stuck_for(self) -> float:
        return time.monotonic() - self.progress_at


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


async def ensure_group(redis: Redis, stream: str, group: str) -> None:
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def record_error(redis: Redis, group: str, error: str, *, dead_letter: bool) -> None:
    mapping = {"last_error": error[:500], "last_error_at": str(time.time())}
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hset(keys.consumer_health(group), mapping=field_map(mapping))
        pipe.hincrby(keys.consumer_health(group), "dead_letters" if dead_letter else "retries", 1)
        await pipe.execute()


async def dead_letter(
    redis: Redis, group: str, partition: int, stream: str, entry: Entry, error: str
) -> None:
    """Park an entry that can never be applied (e.g. garbage on a queue), counted."""
    await DeadLetters(redis, group).add(
        DeadLetter(
            group=group,
            stream=stream,
            entry_id=entry.id,
            fields=entry.fields,
            error=error,
            at=time.time(),
            partition=partition,
        )
    )
    await record_error(redis, group, error, dead_letter=True)
    log.error("%s: entry %s of %s dead-lettered: %s", group, entry.id, stream, error)


def parse_entries(partition: int, reply: object) -> list[Entry]:
    return [Entry(entry_id, partition, fields) for _, entry_id, fields in stream_entries(reply)]


async def acknowledge(
    redis: Redis, handler: PartitionHandler, partition: int, ids: list[str]
) -> None:
    if ids:
        await redis.xack(handler.stream(partition), handler.group, *ids)


@dataclass(frozen=True)
class _Owned:
    task: asyncio.Task[None]
    stop: asyncio.Event
    health: PartitionHealth
    lease: LeaseClock


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
    ) -> None:
        self._redis = redis
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
        try:
            while not stop.is_set():
                try:
                    await self.rebalance()
                except INFRA_ERRORS as exc:
                    log.warning("lease upkeep failed, will retry: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=tick)
        finally:
            await self.release_all()

    async def rebalance(self) -> None:
        """Keep (renew) every lease first, then stop what is lost, stuck or over this
        process's share, all at once, then take free partitions up to the share: a slow stop
        must not hold up the renewals of the partitions this process keeps."""
        members = max(1, await self._members())
        target = math.ceil(self._partitions / members)
        kept: dict[str, list[int]] = {group: [] for group in self._handlers}
        stopping: list[Awaitable[None]] = []
        try:
            await self._renew(kept, stopping)
            for group, mine in kept.items():
                stopping += [self._stop(group, p, release=True) for p in mine[target:]]
        finally:
            await asyncio.gather(*stopping)
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
        task = asyncio.create_task(
            self._consume(self._handlers[group], partition, stop, health, lease),
            name=f"{group}:p{partition}",
        )
        self._owned[(group, partition)] = _Owned(task, stop, health, lease)
        log.info("took %s partition %d", group, partition)

    async def _stop(self, group: str, partition: int, *, release: bool, wait: float = 10.0) -> None:
        """Stop a partition's task (it finishes its batch, up to `wait` seconds)."""
        owned = self._owned.pop((group, partition))  # at once: the partition is no longer ours
        owned.stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(owned.task), timeout=wait)
        except TimeoutError:
            owned.task.cancel()
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

    async def _consume(
        self,
        handler: PartitionHandler,
        partition: int,
        stop: asyncio.Event,
        health: PartitionHealth,
        lease: LeaseClock,
    ) -> None:
        stream = handler.stream(partition)
        consumer = f"p{partition}"
        parking = Parking(self._redis, handler, partition)
        lanes = (
            _Lanes(self, handler, partition, stop, health, parking)
            if hasattr(handler, "key_of")
            else None
        )
        trim = ConsumedTrim.of(handler)
        try:
            await self._consume_loop(
                handler, partition, stop, stream, consumer, lanes, health, parking, lease, trim
            )
        finally:
            if lanes is not None:
                await lanes.drain()

    async def _consume_loop(
        self,
        handler: PartitionHandler,
        partition: int,
        stop: asyncio.Event,
        stream: str,
        consumer: str,
        lanes: _Lanes | None,
        health: PartitionHealth,
        parking: Parking,
        lease: LeaseClock,
        trim: ConsumedTrim | None,
    ) -> None:
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
                    await ensure_group(self._redis, stream, handler.group)
                    await parking.load()
                await parking.serve()
                budget = lease.read_budget()
                if budget <= 0:  # not sure the lease is still ours: wait for its renewal
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=0.05)
                    continue
                if lanes is not None:
                    acks += lanes.take_done()
                block = None if cursor != ">" else max(1, min(self._block_ms, int(budget * 1000)))
                reply = await self._read(handler.group, consumer, stream, cursor, acks, block, trim)
                acks = []
                entries = parse_entries(partition, reply)
                if cursor != ">":
                    if not entries:
                        cursor = ">"
                        continue
                    cursor = entries[-1].id
                outage = 0
                if not entries:
                    if lanes is None or lanes.idle:
                        health.progressed()  # nothing to do is not being stuck
                    continue
                if lanes is not None:
                    await lanes.dispatch(entries)
                    continue
                deferred = await self._process(handler, partition, entries, stop, health, parking)
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

    async def _read(
        self,
        group: str,
        consumer: str,
        stream: str,
        cursor: str,
        acks: list[str],
        block: int | None,
        trim: ConsumedTrim | None = None,
    ) -> object:
        """The next batch (blocking up to `block` ms for new entries), acknowledging `acks`
        and trimming what the groups are done with (when due) on the way."""
        due = trim if trim is not None and trim.due() else None
        if not acks and due is None:
            return await self._redis.xreadgroup(
                group, consumer, {stream: cursor}, count=self._batch, block=block
            )
        async with self._redis.pipeline(transaction=False) as pipe:
            if acks:
                pipe.xack(stream, group, *acks)
            if due is not None:
                due.queue(pipe, stream)
            pipe.xreadgroup(group, consumer, {stream: cursor}, count=self._batch, block=block)
            *replies, reply = await pipe.execute(raise_on_error=False)
        if due is not None:
            await due.answered(self._redis, stream, replies.pop())
        for failed in (r for r in (*replies, reply) if isinstance(r, Exception)):
            raise failed
        return reply

    async def _process(
        self,
        handler: PartitionHandler,
        partition: int,
        entries: list[Entry],
        stop: asyncio.Event,
        health: PartitionHealth,
        parking: Parking,
    ) -> Collection[str]:
        """Apply a batch; entries of parked keys are set aside behind their failed entry,
        and an entry that keeps failing is dead-lettered, its key parked behind it."""
        live = [e for e in entries if e.fields]  # a trimmed entry comes back empty
        free = await parking.hold(live)
        set_aside = len(free) < len(live)
        deferred: list[str] = []
        batch = _batch_span(handler, partition, free)
        try:
            if free:
                with tracing.current_span(batch):
                    deferred += await handler.handle(partition, free) or ()
        except (LeaseLost, *INFRA_ERRORS) as exc:
            tracing.end(batch, type(exc).__name__)
            batch = None
            raise
        except Exception:
            tracing.end(batch, "the batch failed: retried one by one")
            batch = None
            if len(free) > 1:
                log.exception(
                    "%s partition %d: batch failed, retrying one by one", handler.group, partition
                )
            for entry in free:
                if parking.held(entry):  # an entry before it, of the same key, just failed
                    await parking.hold([entry])
                    set_aside = True
                else:
                    deferred += await self._retry_one(
                        handler, partition, entry, stop, health, parking
                    )
        finally:
            tracing.end(batch)
        if set_aside:  # the checkpoint moves past what was set aside (a retry replays it)
            await handler.skip(partition, live[-1])
        return deferred

    async def _retry_one(
        self,
        handler: PartitionHandler,
        partition: int,
        entry: Entry,
        stop: asyncio.Event,
        health: PartitionHealth,
        parking: Parking,
    ) -> Collection[str]:
        error = ""
        for attempt in range(MAX_ATTEMPTS):
            try:
                return await handler.handle(partition, [entry]) or ()
            except (LeaseLost, *INFRA_ERRORS):
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.exception(
                    "%s: entry %s failed (attempt %d)", handler.group, entry.id, attempt + 1
                )
                health.failed(error)
                await record_error(self._redis, handler.group, error, dead_letter=False)
                await HANDLER_RETRY.sleep(attempt, stop)
        await parking.give_up(entry, error, MAX_ATTEMPTS)
        await record_error(self._redis, handler.group, error, dead_letter=True)
        await handler.skip(partition, entry)
        return ()


def _batch_span(handler: PartitionHandler, partition: int, entries: list[Entry]) -> Span | None:
    """A span for a batch of several entries, some of them traced (else None)."""
    if len(entries) < 2 or not tracing.enabled():
        return None
    stream = handler.stream(partition)
    return tracing.batch(
        f"process {stream}",
        (entry.fields.get(tracing.FIELD, "") for entry in entries),
        tracing.messaging("process", stream, group=handler.group, count=len(entries)),
    )


class _Lanes:
    """Per-key chains of entries for a KeyedHandler on one partition.

    Finished entries are acknowledged together: when the stream has nothing new, and
    whenever a batch arrives.
    """

    def __init__(
        self,
        consumer: PartitionedConsumer,
        handler: PartitionHandler,
        partition: int,
        stop: asyncio.Event,
        health: PartitionHealth,
        parking: Parking,
    ) -> None:
        self._consumer = consumer
        self._health = health
        self._parking = parking
        self._handler = handler
        self._key_of: Callable[[Entry], str | None] = handler.key_of  # type: ignore[attr-defined]
        self._partition = partition
        self._stop = stop
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
            await acknowledge(self._consumer._redis, self._handler, self._partition, done)
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
            deferred = await self._consumer._process(
                self._handler, self._partition, [entry], self._stop, self._health, self._parking
            )
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
