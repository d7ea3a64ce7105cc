"""Zero-downtime rebuilds: a shadow copy of a read model, built from the streams while the live
one keeps serving, compared with it, then swapped in atomically (or abandoned).

1. **Build.** The projection runs over its streams (XRANGE in big chunks, no consumer group)
   into shadow keys (`keys.shadow(live key)`, on the read Redis), up to the live checkpoint of
   each partition; the live checkpoints move on meanwhile, and the shadow follows them until
   it has caught up. Writes of one key within a chunk are combined (see read_model_writes).
2. **Cut.** The rebuild takes the projection's leases (each projector stops after the batch
   in hand and waits), watches the live checkpoints and applied versions, catches the shadow
   up to exactly those checkpoints, and compares the two copies key by key.
3. **Swap.** One MULTI per partition (its keys share a slot) renames every shadow key over
   its live key (checkpoints and applied versions included) and deletes the live keys the
   shadow does not have. If a watched key moved meanwhile (a projector's last batch
   landing), nothing is written and that partition's cut is tried again. The leases go back
   (kernel/cut_leases.py) and the projectors carry on from the swapped checkpoints.

The streams are read through the archive (kernel/archive/reader.py): the archive's entries,
then the stream's, as one sequence. While it runs, the rebuild holds each partition's
entries from its cursor on in the stream (kernel/archive/holds.py), so the trim leaves them.

One class, its phases in the order they run (over 300 lines: each phase hands the next its
cursors, shadow and leases). Only projections are rebuilt, and a rebuild never touches a
consumer group: no process manager or notifier runs again. Entries an operator discarded
stay discarded; an entry that fails holds its key back for the rest of the build (as
parking does live) and is reported (rebuild_replay.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import msgspec
from redis.asyncio import Redis
from redis.exceptions import WatchError

from app.kernel import keys
from app.kernel.archive.holds import ArchiveHolds
from app.kernel.archive.reader import ArchiveReader
from app.kernel.cut_leases import CutLeases
from app.kernel.dead_letters import DeadLetters
from app.kernel.handlers import INFRA_ERRORS, Entry
from app.kernel.leases import LEASE_MS, Leases
from app.kernel.positions import parse_stream_id
from app.kernel.projection import Projection, group_name
from app.kernel.read_model_diff import (
    Diff,
    by_partition,
    compare,
    drop_shadow,
    live_and_shadow_keys,
    merged_diffs,
    queue_swap,
)
from app.kernel.read_side import ReadSide
from app.kernel.rebuild_replay import ChunkReplay, ShadowPartition, queue_shadow_writes
from app.kernel.rebuild_state import (
    RUNNING,
    Phase,
    ProgressRate,
    RebuildState,
    entries_to_read,
    load_state,
    save_state,
)
from app.kernel.redis_types import optional_text

log = logging.getLogger(__name__)

CHUNK = 5000
"""Entries read (and applied) per round trip."""
LOCK_MS = 30_000
CUT_SETTLE_SECONDS = 10.0  # a partition's cut is retried while a projector still moves it
CUT_RETRY_SECONDS = 0.02
REPORT_SECONDS = 0.5
RATE_WINDOW_SECONDS = 5.0
POSITION_KEYS = (keys.checkpoint, keys.projection_health)
FAILURES_KEPT = 10


class RebuildBusy(Exception):
    """Another rebuild of the projection is running."""


class RebuildError(Exception):
    """The rebuild cannot go on (no shadow to swap, checkpoints that never hold still)."""


def _later(a: str, b: str) -> bool:
    return parse_stream_id(a) > parse_stream_id(b)


class ShadowRebuild:
    """One rebuild of one projection. `start`, then `follow` and `cut` (or `abandon`)."""

    def __init__(
        self,
        write: Redis,
        read: Redis,
        projection: Projection[Any],
        partitions: int,
        *,
        owner: str,
        by: str = "",
        chunk: int = CHUNK,
        on_progress: Callable[[RebuildState], Awaitable[None]] | None = None,
        lease_ms: int = LEASE_MS,
        archive: ArchiveReader | None = None,
    ) -> None:
        """`lease_ms`: the leases of the projectors (LEASE_MS): see `cut`. `archive`: where
        the events trimmed from the streams are (None: the streams alone)."""
        self._write = write
        self._read = read
        self._side = ReadSide(read, partitions)
        self._projection = projection
        self._partitions = partitions
        self._owner = owner
        self._chunk = chunk
        self._on_progress = on_progress
        self.name = projection.name
        self.group = group_name(projection.name)
        self._lock = Leases(write, owner, LOCK_MS)
        self._archive = archive
        self._holds = ArchiveHolds(write, f"rebuild.{self.group}")
        self._cut_leases = CutLeases(write, owner, self.group, partitions, lease_ms=lease_ms)
        self._parts = [ShadowPartition() for _ in range(partitions)]
        self._positions = {key(self.name, p) for p in range(partitions) for key in POSITION_KEYS}
        """Keys that are positions or warnings, not the model: left out of the diff."""
        self._replay = ChunkReplay(projection, set(), self._failed)
        self._rate = ProgressRate(RATE_WINDOW_SECONDS)
        self._reported = 0.0
        now = time.time()
        self.state = RebuildState(
            projection=self.name, phase="building", by=by, started_at=now, updated_at=now
        )

    # --- lifecycle ------------------------------------------------------------------------

    async def acquire(self) -> None:
        """Hold the projection's rebuild lock (one rebuild of a projection at a time)."""
        if not await self._lock.acquire(f"rebuild.{self.group}", 0):
            raise RebuildBusy(f"another rebuild of {self.name} is running")
        discarded = await DeadLetters(self._write, self.group).discarded_entries()
        self._replay = ChunkReplay(self._projection, discarded, self._failed)

    async def start(self) -> None:
        """A fresh shadow (whatever an earlier rebuild left is dropped)."""
        await self.acquire()
        await drop_shadow(self._read, self.name)
        self.state = msgspec.structs.replace(self.state, total=await self._estimate_total())
        await self._save(force=True)

    async def resume(self) -> None:
        """Go on with the shadow an earlier rebuild built (to swap it in)."""
        await self.acquire()
        previous = await self._previous()
        if previous is None or previous.phase not in ("ready", "diffing", "swapping"):
            raise RebuildError(f"there is no shadow of {self.name} to swap in: rebuild it first")
        self.state = msgspec.structs.replace(previous, error="")
        for partition, cursor in enumerate(await self._checkpoints(keys.shadow)):
            part = self._parts[partition]
            part.cursor = cursor or "0-0"
            part.complete = False
            part.held = dict(previous.held.get(str(partition), {}))

    async def _previous(self) -> RebuildState | None:
        return await load_state(self._write, self.name)

    async def close(self) -> None:
        with contextlib.suppress(*INFRA_ERRORS):
            await self._holds.release(range(self._partitions))
            await self._lock.release(f"rebuild.{self.group}", 0)

    async def fail(self, error: str) -> None:
        await self._set_phase("failed", error=error[:500])

    # --- build ----------------------------------------------------------------------------

    async def follow(self) -> None:
        """Build the shadow up to the live checkpoints, following them until it is close:
        a round in which it reached every target (under traffic the live projection moves
        on during the round; the cut catches up the rest with the projectors paused)."""
        while True:
            targets = await self._checkpoints()
            behind = [
                (partition, target)
                for partition, target in enumerate(targets)
                if target and _later(target, self._parts[partition].cursor)
            ]
            if not behind:
                return
            total = await self._estimate_total()
            if total > self.state.total:
                self.state = msgspec.structs.replace(self.state, total=total)
            if all(await self._round(behind)):
                return

    async def _round(self, behind: list[tuple[int, str]]) -> list[bool]:
        """A chunk of each partition in turn (even progress). The next partition's chunk is
        read, and the last one's writes sent, while this one is applied."""
        reached: list[bool] = []
        writing: list[asyncio.Future[object]] = []
        reading = asyncio.ensure_future(self._read_chunk(*behind[0]))
        try:
            for index, (partition, target) in enumerate(behind):
                reply = await reading
                if index + 1 < len(behind):
                    reading = asyncio.ensure_future(self._read_chunk(*behind[index + 1]))
                done, write = self._apply_chunk(partition, target, reply)
                reached.append(done)
                writing.append(asyncio.ensure_future(write))
                await self._save()
            await asyncio.gather(*writing)
        finally:
            reading.cancel()
            for pending in writing:
                pending.cancel()
        return reached

    async def _catch_up(self, targets: Sequence[str | None]) -> None:
        for partition, target in enumerate(targets):
            if target:
                await self._catch_up_partition(partition, target)

    async def _catch_up_partition(self, partition: int, target: str) -> None:
        while _later(target, self._parts[partition].cursor):
            reply = await self._read_chunk(partition, target)
            _, write = self._apply_chunk(partition, target, reply)
            await write

    async def _checkpoints(self, copy: Callable[[str], str] = str) -> list[str | None]:
        """The live checkpoint of each partition (or the shadow's: `copy` = keys.shadow)."""
        (found,) = await self._side.gather(lambda p, i: p.get(copy(keys.checkpoint(self.name, i))))
        return [optional_text(value) for value in found]

    async def _read_chunk(self, partition: int, target: str) -> list[tuple[str, dict[str, str]]]:
        stream = self._projection.stream(partition)
        part = self._parts[partition]
        if self._archive is not None:
            entries = await self._archive.read(
                partition, part.cursor, target, self._chunk, stream=stream
            )
        else:
            reply = await self._write.xrange(stream, f"({part.cursor}", target, count=self._chunk)
            entries = cast(list[tuple[str, dict[str, str]]], reply)
        if not part.complete:
            await self._replay.load_versions(self._read, partition, part, entries)
        return entries

    def _apply_chunk(
        self, partition: int, target: str, reply: list[tuple[str, dict[str, str]]]
    ) -> tuple[bool, Awaitable[object]]:
        """Apply a chunk read from a partition; whether it reached the target, and the
        sending of its writes to the shadow."""
        part = self._parts[partition]
        if not reply:
            part.cursor = target
            return True, asyncio.sleep(0)
        stream = self._projection.stream(partition)
        entries = [Entry(entry_id, partition, fields) for entry_id, fields in reply if fields]
        done = self._replay.project(partition, part, stream, entries)
        last = reply[-1][0]
        pipe = self._read.pipeline(transaction=False)
        queue_shadow_writes(pipe, self.name, partition, done, last)
        part.cursor = last
        part.versions.update(done.versions)
        self.state = msgspec.structs.replace(self.state, done=self.state.done + len(reply))
        return len(reply) < self._chunk or last == target, pipe.execute()  # (then reset)

    def _failed(self, partition: int, entry: Entry, key: str, exc: Exception) -> None:
        note = f"{partition}:{entry.id} {key}: {type(exc).__name__}: {exc}"[:300]
        failures = [*self.state.failures, note][-FAILURES_KEPT:]
        self.state = msgspec.structs.replace(
            self.state, failed=self.state.failed + 1, failures=failures
        )
        log.warning("rebuild of %s: entry failed (%s)", self.name, note)

    # --- cut, diff, swap ------------------------------------------------------------------

    async def cut(self, *, swap: bool) -> Diff:
        """Pause the projection, catch the shadow up to it, compare; swap if asked.

        Each partition is compared and swapped in a transaction of its own, since its keys
        are all in one slot (on a Cluster, a transaction cannot span slots). A query that
        gathers partitions may, for the few milliseconds between them, see some swapped and
        some not: both copies hold the same events, and they differ only where the rebuild
        fixes something.
        """
        leases, partitions = self._cut_leases, range(self._partitions)
        await leases.take()
        try:
            await self._set_phase("swapping" if swap else "diffing")
            await self._catch_up(await self._checkpoints())
            live, shadow = await live_and_shadow_keys(self._read, self.name)
            live_of, shadow_of = by_partition(live), by_partition(shadow)
            diffs = []
            for partition in partitions:
                found = live_of.get(partition, set()), shadow_of.get(partition, set())
                diffs.append(await self._cut_partition(leases, partition, found, swap=swap))
            diff = merged_diffs(diffs)
            await self._set_phase("swapped" if swap else "ready", diff=diff)
            if swap:
                log.info("rebuild of %s swapped in (%s)", self.name, diff.summary)
            return diff
        finally:
            await leases.give_back()

    async def _cut_partition(
        self,
        leases: CutLeases,
        partition: int,
        found: tuple[set[str], set[str]] | None,
        *,
        swap: bool,
    ) -> Diff:
        """One partition's diff (and swap), in one transaction watching its checkpoint and
        versions: if a projector's last batch lands meanwhile, nothing is written, and the
        shadow catches up and is compared again. `found`: its live and shadow keys."""
        checkpoint = keys.checkpoint(self.name, partition)
        deadline, pause = time.monotonic() + CUT_SETTLE_SECONDS, CUT_RETRY_SECONDS
        while True:
            async with self._read.pipeline(transaction=True) as tx:
                await tx.watch(checkpoint, keys.applied_versions(self.name, partition))
                target = optional_text(await tx.get(checkpoint))
                if target and _later(target, self._parts[partition].cursor):
                    await self._catch_up_partition(partition, target)
                    await leases.renew(partition)  # a long catch-up
                    found = None
                if found is None:
                    found = await live_and_shadow_keys(self._read, self.name, partition)
                live, shadow = found
                diff = await compare(self._read, live, shadow, keys.shadow, self._ignored)
                tx.multi()  # type: ignore[no-untyped-call]
                if swap:
                    queue_swap(tx, live, shadow)
                else:  # only to learn whether the live copy held still meanwhile
                    tx.exists(checkpoint)
                try:
                    await tx.execute()
                    return diff
                except WatchError:
                    log.info("rebuild of %s: a projector moved on during the cut", self.name)
                    found = None
            if time.monotonic() > deadline:
                raise RebuildError(f"the checkpoints of {self.name} kept moving; try again")
            await asyncio.sleep(pause)  # (the pass sees a lease taken within PAUSES_EVERY_SECONDS)
            pause = min(2 * pause, 0.5)
            await leases.renew(partition)

    def _ignored(self, key: str) -> bool:
        return key in self._positions

    async def abandon(self) -> None:
        """Drop the shadow (after `acquire`, or within a rebuild of one's own)."""
        previous = await self._previous()
        if previous is not None and previous.phase not in RUNNING:
            self.state = previous
        await drop_shadow(self._read, self.name)
        await self._set_phase("abandoned")

    # --- progress -------------------------------------------------------------------------

    async def _estimate_total(self) -> int:
        streams = [self._projection.stream(p) for p in range(self._partitions)]
        return max(await entries_to_read(self._write, streams, self.group), self.state.done)

    async def _set_phase(self, phase: Phase, *, diff: Diff | None = None, error: str = "") -> None:
        self.state = msgspec.structs.replace(
            self.state, phase=phase, diff=diff or self.state.diff, error=error
        )
        await self._save(force=True)

    async def _save(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._reported < REPORT_SECONDS:
            return
        self._reported = now
        rate = self._rate.sample(now, self.state.done)
        total = max(self.state.total, self.state.done)
        self.state = msgspec.structs.replace(
            self.state,
            updated_at=time.time(),
            total=total,
            rate=round(rate, 1) if rate else self.state.rate,
            eta_seconds=round((total - self.state.done) / rate, 1) if rate > 0 else None,
            position=",".join(f"{p}:{part.cursor}" for p, part in enumerate(self._parts)),
            held={str(p): dict(part.held) for p, part in enumerate(self._parts) if part.held},
        )
        await save_state(self._write, self.state)
        if not await self._lock.renew(f"rebuild.{self.group}", 0):
            raise RebuildBusy(f"another rebuild of {self.name} took over")
        if self.state.phase in RUNNING:
            for partition, part in enumerate(self._parts):
                await self._holds.hold(partition, part.cursor)
        if self._on_progress is not None:
            await self._on_progress(self.state)
