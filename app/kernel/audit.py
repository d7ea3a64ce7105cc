"""Continuous projection audit: a sample of aggregates re-derived from their events and
compared with the read model, a little at a time, while everything runs.

A round takes one partition of one projection:

1. a random sample of the aggregates the read model has applied (HRANDFIELD on its applied
   versions), and its checkpoint;
2. one pass over the partition's stream up to the checkpoint (throttled to a rate), keeping
   the events of the sampled aggregates (entries an operator discarded are left out);
3. the projection itself run over each aggregate's events into recorded writes (nothing is
   written): what the read model should hold for it, and at which version;
4. one MULTI on the read Redis for the applied versions and the current values, so the two
   agree; an aggregate whose applied version is not the re-derived one (it moved on, or is
   parked behind a dead letter) is skipped. For the others every value the writes set is
   compared: a hash's fields, a sorted set's members and scores, a list pushed only from the
   right (the aggregate's own list) as a whole. Counters and capped lists that many
   aggregates add to are not compared.

What differs is reported with its key; a later round that finds the key right clears it.
The events are read through the archive (archive, then stream: kernel/archive/reader.py),
and the round holds the partition's stream from where it reads on, so the trim leaves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import msgspec
from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.archive.holds import ArchiveHolds
from app.kernel.archive.manifest import START
from app.kernel.archive.reader import ArchiveReader
from app.kernel.dead_letters import DeadLetters
from app.kernel.handlers import INFRA_ERRORS, Entry
from app.kernel.leases import Leases
from app.kernel.projection import Decoded, Projected, Projection, group_name, project
from app.kernel.read_model_writes import Write, redis_text
from app.kernel.redis_types import optional_text, text_list

log = logging.getLogger(__name__)

CHUNK = 2000
MISMATCHES_KEPT = 50


class Mismatch(msgspec.Struct, frozen=True):
    key: str
    aggregate: str
    detail: str
    found_at: float


class AuditReport(msgspec.Struct, frozen=True, kw_only=True):
    projection: str
    rounds: int = 0
    checked: int = 0
    """Aggregates compared, over every round."""
    skipped: int = 0
    """Aggregates sampled but not compared (moved on meanwhile, or parked)."""
    mismatches: list[Mismatch] = []
    """What is wrong now (a later round that finds a key right clears it)."""
    last_round_at: float = 0.0
    last_partition: int = -1


_report = msgspec.json.Decoder(AuditReport)


async def audit_reports(redis: Redis, projections: Sequence[str]) -> list[AuditReport]:
    async with redis.pipeline(transaction=False) as pipe:  # keys of several Cluster slots
        for name in projections:
            pipe.get(keys.audit_report(name))
        raw = await pipe.execute()
    return [_report.decode(value) for value in raw if value]


async def run_audits(
    audits: Sequence[ProjectionAudit],
    partitions: int,
    leases: Leases,
    stop: asyncio.Event,
    *,
    every: float,
) -> None:
    """A round every `every` seconds, one (projection, partition) after another, in the one
    process of the kind that holds the audit's lease."""
    turn = 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
        if stop.is_set() or not audits:
            return
        try:
            if not await leases.acquire("audit", 0):
                continue  # another process audits
            audit = audits[turn % len(audits)]
            partition = turn // len(audits) % partitions
            turn += 1
            await audit.round(partition)
        except INFRA_ERRORS as exc:
            log.warning("audit round skipped (redis: %s)", exc)
        except Exception:
            log.exception("audit round failed")


class ProjectionAudit:
    """Audits one projection (which must have an `order_key`: its aggregate)."""

    def __init__(
        self,
        write: Redis,
        read: Redis,
        projection: Projection[Any],
        *,
        sample: int = 20,
        entries_per_second: int = 20_000,
        archive: ArchiveReader | None = None,
    ) -> None:
        self._write = write
        self._archive = archive
        self._holds = ArchiveHolds(write, f"audit.{projection.name}")
        self._read = read
        self._projection = projection
        self._sample = sample
        self._rate = entries_per_second
        self.name = projection.name
        order_key: Callable[[dict[str, str]], str] | None = getattr(projection, "order_key", None)
        assert order_key is not None, f"{self.name} has no aggregates to audit"
        self._order_key = order_key

    async def round(self, partition: int) -> AuditReport:
        """Audit a sample of one partition's aggregates; the report, as saved."""
        sampled, target = await self._sample_of(partition)
        events = await self._events(partition, sampled, target) if sampled and target else {}
        expected: dict[str, Projected] = {}
        for aggregate, decoded in events.items():
            try:
                expected[aggregate] = project(self._projection, decoded, {})
            except Exception:  # it fails live too: parked behind a dead letter
                continue
        found, checked = await self._compare(partition, expected)
        return await self._save(partition, expected, found, checked, len(sampled) - checked)

    async def _sample_of(self, partition: int) -> tuple[list[str], str | None]:
        async with self._read.pipeline(transaction=False) as pipe:
            pipe.hrandfield(keys.applied_versions(self.name, partition), self._sample)
            pipe.get(keys.checkpoint(self.name, partition))
            sampled, target = await pipe.execute()
        return text_list(sampled or []), optional_text(target)

    async def _events(
        self, partition: int, sampled: list[str], target: str
    ) -> dict[str, list[Decoded]]:
        """Every event of the sampled aggregates up to `target`, decoded, per aggregate."""
        stream = self._projection.stream(partition)
        discarded = await DeadLetters(self._write, group_name(self.name)).discarded_entries()
        wanted = set(sampled)
        found: dict[str, list[Decoded]] = {aggregate: [] for aggregate in sampled}
        cursor = START
        started, read = time.monotonic(), 0
        try:
            while True:
                await self._holds.hold(partition, cursor)
                reply = await self._chunk(partition, stream, cursor, target)
                for entry_id, fields in reply:
                    if not fields or (stream, entry_id) in discarded:
                        continue
                    aggregate = ""
                    try:
                        aggregate = self._order_key(fields)
                        if aggregate in wanted:
                            entry = Entry(entry_id, partition, fields)
                            found[aggregate].append((entry, *self._projection.decode(fields)))
                    except Exception:  # a poison: its aggregate is parked, never compared
                        wanted.discard(aggregate)
                        found.pop(aggregate, None)
                read += len(reply)
                if len(reply) < CHUNK:
                    return found
                cursor = reply[-1][0]
                ahead = read / self._rate - (time.monotonic() - started)
                await asyncio.sleep(max(0.0, ahead))  # low rate: a little of one core at most
        finally:
            with contextlib.suppress(*INFRA_ERRORS):
                await self._holds.release([partition])

    async def _chunk(
        self, partition: int, stream: str, cursor: str, target: str
    ) -> list[tuple[str, dict[str, str]]]:
        if self._archive is not None:
            return await self._archive.read(partition, cursor, target, CHUNK, stream=stream)
        start = "-" if cursor == START else f"({cursor}"
        return cast(
            list[tuple[str, dict[str, str]]],
            await self._write.xrange(stream, start, target, count=CHUNK),
        )

    async def _compare(
        self, partition: int, expected: dict[str, Projected]
    ) -> tuple[dict[str, list[str]], int]:
        """Per aggregate compared, what differs ("key: detail"); and how many were compared."""
        aggregates = list(expected)
        if not aggregates:
            return {}, 0
        writes = [
            (aggregate, w) for aggregate in aggregates for w in expected[aggregate].writes.writes
        ]
        compared = [(aggregate, w) for aggregate, w in writes if w.kind in _COMPARED]
        async with self._read.pipeline(transaction=True) as tx:
            tx.hmget(keys.applied_versions(self.name, partition), aggregates)
            for _, write in compared:
                _read_back(tx, write)
            replies = await tx.execute()
        live_versions = dict(zip(aggregates, replies[0], strict=True))
        found: dict[str, list[str]] = {}
        for (aggregate, write), live in zip(compared, replies[1:], strict=True):
            version = expected[aggregate].versions.get(aggregate)
            if str(version) != live_versions[aggregate]:
                continue
            found.setdefault(aggregate, [])
            found[aggregate] += [f"{write.key}: {d}" for d in _differences(write, live)]
        checked = sum(1 for a in aggregates if str(expected[a].versions.get(a)) == live_versions[a])
        return found, checked

    async def _save(
        self,
        partition: int,
        expected: dict[str, Projected],
        found: dict[str, list[str]],
        checked: int,
        skipped: int,
    ) -> AuditReport:
        raw = await self._write.get(keys.audit_report(self.name))
        report = _report.decode(raw) if raw else AuditReport(projection=self.name)
        now = time.time()
        looked_at = {w.key for aggregate in found for w in expected[aggregate].writes.writes}
        kept = [m for m in report.mismatches if m.key not in looked_at]
        new = [
            Mismatch(line.partition(": ")[0], aggregate, line.partition(": ")[2], now)
            for aggregate, lines in found.items()
            for line in lines
        ]
        for mismatch in new:
            log.error("audit of %s: %s %s", self.name, mismatch.key, mismatch.detail)
        report = msgspec.structs.replace(
            report,
            rounds=report.rounds + 1,
            checked=report.checked + checked,
            skipped=report.skipped + max(0, skipped),
            mismatches=(kept + new)[-MISMATCHES_KEPT:],
            last_round_at=now,
            last_partition=partition,
        )
        await self._write.set(keys.audit_report(self.name), msgspec.json.encode(report))
        return report


_COMPARED = frozenset({"hset", "members", "rpush"})


def _read_back(tx: Any, write: Write) -> None:
    if write.kind == "hset":
        tx.hmget(write.key, list(write.fields))
    elif write.kind == "members":
        tx.zmscore(write.key, list(write.members))
    else:
        tx.lrange(write.key, 0, -1)


def _differences(write: Write, live: Any) -> list[str]:
    if write.kind == "hset":
        return [
            f"{name}: read model {found!r}, events say {redis_text(value)!r}"
            for (name, value), found in zip(write.fields.items(), live, strict=True)
            if found != redis_text(value)
        ]
    if write.kind == "members":
        return [
            f"{member}: read model {found!r}, events say {score!r}"
            for (member, score), found in zip(write.members.items(), live, strict=True)
            if found != score
        ]
    wanted = [redis_text(value) for value in write.values]
    if live != wanted:
        return [f"list of {len(live)} in the read model, {len(wanted)} from the events"]
    return []
