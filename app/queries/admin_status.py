"""The admin status page: commands, projections and processes, workers, sockets.

Over 300 lines: one page's query, each section a function, gathered in one round of reads."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.archive.status import PartitionStatus, archive_status
from app.kernel.audit import AuditReport, audit_reports
from app.kernel.consumer import Stall
from app.kernel.heartbeat import Heartbeat, live_heartbeats
from app.kernel.outcomes import OUTCOME_KINDS, success_rate
from app.kernel.pauses import Pause, paused
from app.kernel.positions import parse_stream_id
from app.kernel.read_side import ReadSide, merged, summed
from app.kernel.rebuild_state import RebuildState, rebuild_states
from app.kernel.redis_types import text
from app.kernel.server_info import Memory, check_replicas, memory, replicas
from app.projections import keys as rm
from app.projections.command_log import LATENCIES, LoggedCommand
from app.queries.dead_letters import ConsumerLetters, DeadLetterView, dead_letters

STALLED_AFTER_SECONDS = 5.0
RECENT = 20
"""Recent commands the page shows."""
ERROR_RECENT_SECONDS = 60.0


class PartitionLag(msgspec.Struct, frozen=True):
    partition: int
    lag_events: int
    lag_seconds: float


class Consumer(msgspec.Struct, frozen=True):
    """A projection, a process or the command queue: one consumer group over P streams."""

    name: str
    kind: str
    position: str
    lag_events: int
    lag_seconds: float
    status: str
    last_error: str
    last_error_at: float | None
    dead_letters: int
    owners: int
    partitions: list[PartitionLag] = []
    """Its lag in each partition (the metrics' per-partition gauges)."""
    paused: Pause | None = None
    """An operator's pause: it reads nothing until resumed (kernel/pauses.py)."""


class Latency(msgspec.Struct, frozen=True):
    p50: float
    p95: float
    p99: float


class Commands(msgspec.Struct, frozen=True):
    counts: dict[str, int]
    """Finished commands by kind: succeeded, rejected (a rule said no), failed (went wrong)."""
    success_rate: float | None
    """succeeded / (succeeded + failed): rejections are apart."""
    rate_per_second: float
    latency_ms: Latency
    by_type: dict[str, dict[str, int]]
    recent: list[LoggedCommand]


class Worker(msgspec.Struct, frozen=True):
    kind: str
    id: str
    heartbeat_age_seconds: float
    info: dict[str, int | str]


class ReplicationStatus(msgspec.Struct, frozen=True):
    """Replicas each acknowledgement waits for (REDIS_WAIT_REPLICAS, the highest any live
    process runs with) and the replicas each master has now: the write side's, and the read
    models' server's when it is another one."""

    wait_replicas: int
    replicas: list[int]
    read_replicas: list[int] | None = None


class Storage(msgspec.Struct, frozen=True):
    """The event streams, what of them is archived, and Redis memory on every master."""

    partitions: list[PartitionStatus]
    redis_memory: list[Memory]


class AdminStatus(msgspec.Struct, frozen=True):
    commands: Commands
    projections: list[Consumer]
    workers: list[Worker]
    websocket_connections: int
    generated_at: float
    stalls: list[Stall] = []
    """Partitions a live process owns and has not moved forward (with its last error)."""
    warnings: list[str] = []
    """What the processes report an operator should know (e.g. Redis is not durable)."""
    dead_letters: list[DeadLetterView] = []
    """Every consumer's dead letters (the oldest few of each), payloads masked."""
    dead_letter_counts: list[ConsumerLetters] = []
    rebuildable: list[str] = []
    """Read models a rebuild may replay."""
    rebuilds: dict[str, RebuildState] = {}
    """The latest rebuild of each, if it had one."""
    audits: list[AuditReport] = []
    """What the projector's audit found in each read model it audits."""
    storage: Storage | None = None
    replication: ReplicationStatus | None = None


class Watched(msgspec.Struct, frozen=True):
    name: str
    kind: str
    group: str
    stream: str
    """events | journal | integration | commands"""
    rebuildable: bool = False
    reader: str = ""
    """The group that reads its stream, if not `group` (the projector's pass: one group for
    every read model; `group` keeps the read model's own health and dead letters)."""

    @property
    def reads_as(self) -> str:
        return self.reader or self.group


_recent_decoder = msgspec.json.Decoder(LoggedCommand)


def _completed(command: LoggedCommand) -> float:
    return command.completed_at


def _latency(item: str) -> tuple[float, float]:
    """(completed at, latency ms) of an entry of the latencies list."""
    completed, _, took = item.partition(":")
    return float(completed), float(took)


def _completed_first(item: tuple[float, float]) -> float:
    return item[0]


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return round(ordered[index], 2)


async def command_stats(read: ReadSide) -> Commands:
    """The command log's partitions added up; its latencies and recent commands merged,
    newest first (each partition's list is)."""
    counts_raw, latencies_raw, recent_raw = await read.gather(
        lambda pipe, p: pipe.hgetall(rm.command_log_counts(p)),
        lambda pipe, p: pipe.lrange(rm.command_log_latencies(p), 0, -1),
        lambda pipe, p: pipe.lrange(rm.command_log_recent(p), 0, RECENT - 1),
    )
    newest = merged(
        ([_recent_decoder.decode(raw) for raw in piece] for piece in recent_raw),
        key=_completed,
        limit=RECENT,
        reverse=True,
    )
    timed = merged(
        ([_latency(item) for item in piece] for piece in latencies_raw),
        key=_completed_first,
        limit=LATENCIES,
        reverse=True,
    )
    counts: dict[str, int] = dict.fromkeys(OUTCOME_KINDS, 0)
    by_type: dict[str, dict[str, int]] = {}
    for field, value in summed(counts_raw).items():
        if ":" in field:
            command_type, _, status = field.partition(":")
            by_type.setdefault(command_type, {})[status] = value
        else:
            counts[field] = value
    now = time.time()
    latencies, last_minute = [], 0
    for completed, took in timed:
        latencies.append(took)
        if now - completed <= 60:
            last_minute += 1
    return Commands(
        counts=counts,
        success_rate=success_rate(counts),
        rate_per_second=round(last_minute / 60, 2),
        latency_ms=Latency(
            percentile(latencies, 0.5), percentile(latencies, 0.95), percentile(latencies, 0.99)
        ),
        by_type=by_type,
        recent=newest,
    )


def _stream_key(kind: str, partition: int) -> str:
    return {
        "events": keys.events,
        "journal": keys.journal,
        "integration": keys.integration,
        "commands": keys.commands,
    }[kind](partition)


async def consumers(
    write: Redis,
    read: Redis,
    watched: Sequence[Watched],
    partitions: int,
    stalls: Sequence[Stall] = (),
) -> list[Consumer]:
    stream_kinds = sorted({w.stream for w in watched})
    pauses = await paused(write)
    async with write.pipeline(transaction=False) as pipe:
        for kind in stream_kinds:
            for partition in range(partitions):
                pipe.xinfo_groups(_stream_key(kind, partition))
                pipe.xrevrange(_stream_key(kind, partition), count=1)
        for w in watched:
            pipe.hgetall(keys.consumer_health(w.group))
            for partition in range(partitions):
                pipe.exists(keys.lease(w.reads_as, partition))
        replies = await pipe.execute(raise_on_error=False)
    groups: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    last_ms: dict[tuple[str, int], int] = {}
    cursor = 0
    for kind in stream_kinds:
        for partition in range(partitions):
            info, last = replies[cursor], replies[cursor + 1]
            cursor += 2
            groups[(kind, partition)] = (
                {g["name"]: g for g in info} if isinstance(info, list) else {}
            )
            last_ms[(kind, partition)] = (
                parse_stream_id(last[0][0])[0] if isinstance(last, list) and last else 0
            )
    health_by_group, owners_by_group = {}, {}
    for w in watched:
        health_by_group[w.group] = replies[cursor] if isinstance(replies[cursor], dict) else {}
        leases = replies[cursor + 1 : cursor + 1 + partitions]
        owners_by_group[w.group] = sum(1 for held in leases if held == 1)
        cursor += 1 + partitions
    projection_names = [w.name for w in watched if w.kind == "projection"]
    checkpoint_names = [keys.checkpoint(n, p) for n in projection_names for p in range(partitions)]
    gaps: dict[str, str] = {}
    async with read.pipeline(transaction=False) as pipe:  # one slot each: no MGET on a Cluster
        for name in checkpoint_names:
            pipe.get(name)
        for name in projection_names:
            for partition in range(partitions):
                pipe.hget(keys.projection_health(name, partition), "gap")
        replies = await pipe.execute() if checkpoint_names else []
    checkpoint_values = replies[: len(checkpoint_names)]
    for index, gap in enumerate(replies[len(checkpoint_names) :]):
        if gap:
            gaps.setdefault(projection_names[index // partitions], text(gap))
    now = time.time()
    result = []
    for w in watched:
        lag, oldest_ms, positions, per_partition = 0, 0, [], []
        for partition in range(partitions):
            group = groups[(w.stream, partition)].get(w.reads_as, {})
            behind = int(group.get("lag") or 0) + int(group.get("pending") or 0)
            lag += behind
            delivered = str(group.get("last-delivered-id", "0-0"))
            if w.kind == "projection":
                index = projection_names.index(w.name) * partitions + partition
                delivered = text(checkpoint_values[index] or "0-0")
            positions.append(f"{partition}:{delivered}")
            behind_ms = 0
            if behind:
                done_ms = parse_stream_id(delivered)[0]
                newest = last_ms[(w.stream, partition)]
                behind_ms = newest - done_ms if done_ms else 0
                oldest_ms = max(oldest_ms, behind_ms)
            per_partition.append(PartitionLag(partition, behind, round(behind_ms / 1000, 3)))
        health = health_by_group[w.group]
        error_at = float(health["last_error_at"]) if health.get("last_error_at") else None
        lag_seconds = round(oldest_ms / 1000, 3)
        status = "ok"
        stalled = [s for s in stalls if s.group == w.reads_as]
        if w.group in pauses or w.reads_as in pauses:
            status = "paused"
        elif stalled:
            status = "stalled"
        elif gaps.get(w.name):
            status = "gap"
        elif error_at and now - error_at < ERROR_RECENT_SECONDS:
            status = "retrying"
        elif lag and w.kind != "queue" and owners_by_group[w.group] == 0:
            status = "stalled"
        elif lag and lag_seconds > STALLED_AFTER_SECONDS:
            status = "lagging"
        result.append(
            Consumer(
                name=w.name,
                kind=w.kind,
                position=",".join(positions),
                lag_events=lag,
                lag_seconds=lag_seconds if lag else 0.0,
                status=status,
                last_error=_stall_text(stalled)
                or health.get("last_error", "")
                or gaps.get(w.name)
                or "",
                last_error_at=error_at,
                dead_letters=int(health.get("dead_letters", 0)),
                owners=owners_by_group[w.group],
                partitions=per_partition,
                paused=pauses.get(w.group),
            )
        )
    return result


def _stall_text(stalled: Sequence[Stall]) -> str:
    return "; ".join(
        f"partition {s.partition}: no progress for {s.seconds:.0f} s"
        + (f" ({s.error})" if s.error else "")
        for s in stalled
    )


async def admin_status(
    write: Redis, read: Redis, watched: Sequence[Watched], partitions: int
) -> AdminStatus:
    beats = await live_heartbeats(write)
    now = time.time()
    stalls = [stall for beat in beats for stall in beat.stalls]
    letters, letter_counts = await dead_letters(write, watched)
    rebuildable = [w.name for w in watched if w.rebuildable]
    replication = await replication_status(write, read, beats)
    warnings = {w for beat in beats for w in beat.warnings}
    warnings.add(check_replicas(replication.replicas, replication.wait_replicas, "REDIS_URL"))
    warnings.discard("")
    return AdminStatus(
        commands=await command_stats(ReadSide(read, partitions)),
        projections=await consumers(write, read, watched, partitions, stalls),
        workers=[Worker(b.kind, b.id, round(now - b.at, 1), b.info) for b in beats],
        websocket_connections=sum(int(b.info.get("ws", 0)) for b in beats if b.kind == "web"),
        generated_at=now,
        stalls=stalls,
        warnings=sorted(warnings),
        dead_letters=letters,
        dead_letter_counts=letter_counts,
        rebuildable=rebuildable,
        rebuilds={r.projection: r for r in await rebuild_states(write, rebuildable)},
        audits=await audit_reports(write, [w.name for w in watched if w.kind == "projection"]),
        storage=Storage(await archive_status(write, partitions, keys.events), await memory(write)),
        replication=replication,
    )


async def replication_status(
    write: Redis, read: Redis, beats: Sequence[Heartbeat]
) -> ReplicationStatus:
    wanted = max((int(b.info.get("wait_replicas", 0)) for b in beats), default=0)
    return ReplicationStatus(
        wait_replicas=wanted,
        replicas=await replicas(write),
        read_replicas=await replicas(read) if read is not write else None,
    )
