"""Projections: stream entries → read model, written together with checkpoint and versions.

A batch costs two round trips on the read Redis: the checkpoint and the applied versions of
its aggregates, read together; then one script (apply_batch.lua) that writes the read model,
the versions, the change notices and the new checkpoint at once — only if the checkpoint is
still the one read: if anyone else moved it meanwhile (a previous owner waking up), nothing is
written and this owner stops. Entries at or before the checkpoint are skipped, and so is an
event whose aggregate version was already applied; a version that jumps is recorded as a gap.

Each traced entry it applies gets a `process` span (the batch's time, its entry's trace), and
the change notices it causes carry that span's traceparent on to the hubs (a notice that
stands for several traced changes of one item carries theirs, space-separated, up to
NOTICE_TRACES). A projection may offer `committed(items)`: called with the items of each
batch once it is written (metrics).

A new read model (its consumer group made after the stream was trimmed: the group starts at
the stream's first entry) is seeded from the archive: the first batch an owner applies in a
partition is preceded by every entry between the read model's checkpoint and that batch,
read through the archive (kernel/archive/reader.py) and applied as batches of their own.

Over 300 lines, one job: a batch of entries from read to write, each step beside the next.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar, cast, get_args, get_origin

import msgspec
from opentelemetry.trace import Span
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from app.kernel import keys, tracing, unions
from app.kernel.archive.groups import before
from app.kernel.archive.manifest import START
from app.kernel.archive.reader import ArchiveReader
from app.kernel.consumer import Entry, LeaseLost
from app.kernel.event_entries import event_head, stored_event
from app.kernel.instruments import NO_INSTRUMENTS, Instruments
from app.kernel.messages import StoredEvent
from app.kernel.notices import ViewNotice, notice_fields
from app.kernel.positions import parse_stream_id
from app.kernel.read_model_writes import ReadModelWrites
from app.kernel.redis_types import field_map, optional_text
from app.kernel.replication import NO_WAIT, Replication
from app.kernel.scripts import load_script, run_calls
from app.kernel.views import Change, View

log = logging.getLogger(__name__)

VIEW_NOTICES_MAXLEN = 5000
NOTICE_TRACES = 8
_APPLY = load_script(__file__, "apply_batch.lua")
T = TypeVar("T")
E = TypeVar("E", bound=msgspec.Struct)
Version = tuple[str, int]


class Projection(Protocol[T]):
    name: str

    def stream(self, partition: int) -> str: ...

    def decode(self, fields: dict[str, str]) -> tuple[Version | None, T | None]:
        """(aggregate, version) of the entry if it has one, and the item to apply, if any.

        The version counts even when the item is None, so a skipped event is not a gap.
        """

    def apply(self, item: T, tx: ReadModelWrites) -> Iterable[Change]:
        """Record the read-model writes for one item (its keys in partition `tx.partition`),
        and say which items of which views changed (`Change(VIEW, key)`). No reads."""


class Applied(Generic[E]):
    """A domain event with its envelope, as an event projection sees it."""

    __slots__ = ("entry_id", "event", "stored")

    def __init__(self, entry_id: str, stored: StoredEvent, event: E) -> None:
        self.entry_id = entry_id
        self.stored = stored
        self.event = event


class EventProjection(Generic[E]):
    """Base for projections of domain events, declared with the events they handle:
    `class Catalog(EventProjection[ProductEvent])`, `EventProjection[Created | Renamed]`.

    That type is the one declaration: `handles` (the type tags it decodes; other events are
    counted but never decoded) and its decoder (of exactly those events) derive from it.
    """

    name = ""
    handles: ClassVar[frozenset[str]] = frozenset()
    declared: ClassVar[object] = None
    """The events type it was declared with (the union its decoder decodes)."""
    _events: ClassVar[msgspec.json.Decoder[Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "handles" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: declare its events as EventProjection[...]")
        for base in cls.__dict__.get("__orig_bases__", ()):
            if get_origin(base) is EventProjection:
                (declared,) = get_args(base)
                if not isinstance(declared, TypeVar):  # a generic subclass declares nothing
                    cls.handles = unions.tags(declared)
                    cls.declared = declared
                    cls._events = msgspec.json.Decoder(declared)

    def stream(self, partition: int) -> str:
        return keys.events(partition)

    def order_key(self, fields: dict[str, str]) -> str:
        return event_head(fields).aggregate

    def decode(self, fields: dict[str, str]) -> tuple[Version | None, Applied[E] | None]:
        head = event_head(fields)
        version = (head.aggregate, head.version)
        if head.type not in self.handles:
            return version, None  # counted, never decoded
        stored = stored_event(fields)
        event: E = self._events.decode(stored.data)
        return version, Applied("", stored, event)

    def apply(self, item: Applied[E], tx: ReadModelWrites) -> Iterable[Change]:
        raise NotImplementedError


Decoded = tuple[Entry, Version | None, Any]
"""An entry with what its projection's `decode` made of it."""


@dataclass
class Projected:
    """What applying entries came to: writes, views changed, versions applied, gaps."""

    writes: ReadModelWrites = field(default_factory=ReadModelWrites)
    changes: dict[tuple[View, str], list[str]] = field(default_factory=dict)
    """Views changed → the traceparents of the traced changes (up to NOTICE_TRACES)."""
    applied: list[Any] = field(default_factory=list)
    """The items applied (not skipped), in order."""
    versions: dict[str, int] = field(default_factory=dict)
    """Aggregates whose applied version moved, and to what."""
    gaps: list[str] = field(default_factory=list)
    seen: int = 0
    """Items taken so far (if one raised, it is item `seen - 1`)."""


def project(
    projection: Projection[Any],
    items: Iterable[Decoded],
    applied: Mapping[str, int],
    into: Projected | None = None,
    trace: Callable[[Entry], str] | None = None,
) -> Projected:
    """Apply decoded entries in order. `applied`: the last version applied per aggregate
    before them (missing: none); an event at or before it is a duplicate and is skipped.
    `trace(entry)`: the traceparent its changes carry ("" for none)."""
    done = into if into is not None else Projected()
    for entry, found, item in items:
        done.seen += 1
        done.writes.partition = entry.partition
        if found is not None:
            aggregate, version = found
            last = done.versions.get(aggregate, applied.get(aggregate, 0))
            if version <= last:
                continue  # a duplicate: applied before
            if version > last + 1:
                done.gaps.append(f"{aggregate}: after v{last} came v{version} ({entry.id})")
            done.versions[aggregate] = version
        if item is None:
            continue
        if isinstance(item, Applied):
            item.entry_id = entry.id
        context = trace(entry) if trace is not None else ""
        done.applied.append(item)
        for change in projection.apply(item, done.writes):
            contexts = done.changes.setdefault((change.view, change.key), [])
            if context and len(contexts) < NOTICE_TRACES:
                contexts.append(context)
    return done


class ProjectionHandler:
    """Adapts a Projection to the partitioned consumer runtime."""

    def __init__(
        self,
        projection: Projection[Any],
        read_redis: Redis,
        instruments: Instruments = NO_INSTRUMENTS,
        archive: ArchiveReader | None = None,
        replication: Replication = NO_WAIT,
    ) -> None:
        """`archive`: where a new read model finds the events trimmed from its stream.
        `replication`: the read Redis's replicas a batch's writes wait for before the batch
        is acknowledged (the acknowledgement rides with the next read)."""
        self.projection = projection
        self._replication = replication
        self._archive = archive
        self._seeded: set[int] = set()
        self.group = group_name(projection.name)
        self._read = read_redis
        self._instruments = instruments
        instruments.applied(projection.name, 0)  # its series exists from the start
        self._committed: Callable[[list[Any]], None] | None = getattr(projection, "committed", None)
        self.retention_seconds: float | None = getattr(projection, "retention_seconds", None)
        """Trim the projection's stream once its group is done with it (see stream_trim)."""

    def stream(self, partition: int) -> str:
        return self.projection.stream(partition)

    def order_key(self, entry: Entry) -> str | None:
        """Entries of one aggregate apply in order (a failed one holds the later ones back)."""
        of = getattr(self.projection, "order_key", None)
        key: str | None = of(entry.fields) if of is not None else None
        return key

    async def handle(self, partition: int, entries: list[Entry]) -> None:
        await self._apply(partition, entries, replay=False)

    async def replay(self, partition: int, entries: list[Entry]) -> None:
        """Apply dead letters being retried: behind the checkpoint, so it is not moved; the
        versions applied per aggregate still skip what was applied."""
        await self._apply(partition, entries, replay=True)

    async def _apply(self, partition: int, entries: list[Entry], replay: bool) -> None:
        if not replay and partition not in self._seeded:
            self._seeded.add(partition)  # (the seed's own batches come through here too)
            try:
                await self._seed(partition, entries[0].id)
            except BaseException:
                self._seeded.discard(partition)
                raise
        spans: list[Span] = []
        try:
            applied = await self._apply_batch(partition, entries, replay, spans)
        except BaseException as exc:
            for span in spans:
                tracing.end(span, type(exc).__name__)
            raise
        for span in spans:
            tracing.end(span)
        if applied:
            self._instruments.applied(self.projection.name, len(applied))
            if self._committed is not None:
                self._committed(applied)

    async def _seed(self, partition: int, first: str) -> None:
        """Apply what comes between the checkpoint and `first` that the group never delivered
        (trimmed before the group existed), from the archive."""
        archive = self._archive
        if archive is None or archive.stream_of(partition) != self.stream(partition):
            return
        name = self.projection.name
        checkpoint = optional_text(await self._read.get(keys.checkpoint(name, partition))) or START
        until = before(first)
        if parse_stream_id(until) <= parse_stream_id(checkpoint):
            return
        if not await archive.archived_any(partition):
            return  # nothing was archived, so nothing trimmed: the group is given it all
        async for rows in archive.chunks(partition, checkpoint, until):
            log.info("%s partition %d: %d entries from the archive", name, partition, len(rows))
            await self._apply(partition, [Entry(i, partition, f) for i, f in rows], False)

    def process_span(self, partition: int, entry: Entry, parent: str, spans: list[Span]) -> str:
        """The `process` span of a traced entry (kept in `spans`); its traceparent."""
        span = tracing.processing(self.projection.stream(partition), self.group, entry.id, parent)
        if span is not None:
            spans.append(span)
        return tracing.of(span)

    async def _apply_batch(
        self, partition: int, entries: list[Entry], replay: bool, spans: list[Span]
    ) -> list[Any]:
        """Two round trips: the checkpoint and the versions of the batch's aggregates, read
        together; then the writes, applied by a script only if the checkpoint is unchanged.
        Returns the items applied (not skipped)."""
        name = self.projection.name
        checkpoint_key = keys.checkpoint(name, partition)
        versions_key = keys.applied_versions(name, partition)
        items = [(entry, *self.projection.decode(entry.fields)) for entry in entries]
        aggregates = list(dict.fromkeys(v[0] for _, v, _ in items if v is not None))
        async with self._read.pipeline(transaction=False) as pipe:
            pipe.get(checkpoint_key)
            if aggregates:
                pipe.hmget(versions_key, aggregates)
            replies = await pipe.execute()
        checkpoint = optional_text(replies[0])
        after = parse_stream_id(checkpoint) if checkpoint else (0, 0)
        versioned = (
            {k: int(v or 0) for k, v in zip(aggregates, replies[1], strict=True)}
            if aggregates
            else {}
        )
        fresh = items if replay else [i for i in items if parse_stream_id(i[0].id) > after]
        if not fresh:
            return []
        traced = tracing.enabled()

        def trace(entry: Entry) -> str:
            parent = entry.fields.get(tracing.FIELD, "") if traced else ""
            return self.process_span(partition, entry, parent, spans) if parent else ""

        done = project(self.projection, fresh, versioned, trace=trace)
        tx = recorder()
        if done.gaps:
            tx.hset(
                keys.projection_health(name, partition),
                mapping=field_map({"gap": done.gaps[-1], "gap_at": str(time.time())}),
            )
        done.writes.send(tx)
        if done.versions:
            tx.hset(versions_key, mapping=field_map(done.versions))
        last_id = fresh[-1][0].id if not replay else checkpoint or fresh[-1][0].id
        position = f"{partition}:{last_id}"
        for (view, key), contexts in done.changes.items():
            tx.xadd(
                keys.view_notices(partition),
                notice_fields(ViewNotice(view, key, position, " ".join(contexts))),
                maxlen=VIEW_NOTICES_MAXLEN,
                approximate=True,
            )
        await self._write(partition, checkpoint or "", "" if replay else last_id, tx)
        return done.applied

    async def _write(self, partition: int, expected: str, new: str, tx: Pipeline) -> None:
        checkpoint = keys.checkpoint(self.projection.name, partition)
        applied = await run_apply(
            self._read, [checkpoint], [expected, new], command_args(tx), self._replication
        )
        if not applied:
            raise LeaseLost(f"{self.projection.name} partition {partition}")

    async def skip(self, partition: int, entry: Entry) -> None:
        checkpoint = optional_text(
            await self._read.get(keys.checkpoint(self.projection.name, partition))
        )
        if checkpoint and parse_stream_id(checkpoint) >= parse_stream_id(entry.id):
            return
        await self._write(partition, checkpoint or "", entry.id, recorder())


def recorder() -> Pipeline:
    """A pipeline that only records the commands queued on it (their arguments as redis-py
    sends them), never executed: the same whether the read Redis is a Cluster or not."""
    return Pipeline(cast(Any, None), {}, transaction=False, shard_hint=None)


def command_args(tx: Pipeline) -> list[list[str]]:
    """The commands a pipeline recorded, as apply_batch.lua takes them."""
    return [[_text(arg) for arg in args] for args, _options in tx.command_stack]


async def run_apply(
    read: Redis,
    checkpoints: list[str],
    positions: list[str],
    commands: list[list[str]],
    replication: Replication = NO_WAIT,
) -> bool:
    """apply_batch.lua: `positions` holds (expected, new) of each checkpoint in turn.
    False when a checkpoint had moved (nothing written). With `replication` on, the WAIT
    rides in the script call's round trip (ReplicationTimeout if too few replicas)."""
    args = [*positions, msgspec.json.encode(commands).decode()]
    if not replication.on:
        return bool(await _APPLY(read, checkpoints, args))
    (applied,) = await run_calls(read, _APPLY, [(checkpoints, args)], replication)
    if isinstance(applied, Exception):
        raise applied
    return bool(applied)


def _text(arg: object) -> str:
    """A command argument as Redis receives it (floats as repr, like redis-py)."""
    if isinstance(arg, bytes):
        return arg.decode()
    if isinstance(arg, float):
        return repr(arg)
    return str(arg)


def group_name(projection: str) -> str:
    return f"projection.{projection}"


AnyProjection = Projection[Any]
"""A projection of whatever items: the runtime hands each item its `decode` made to its `apply`."""
ProjectionFactory = Callable[[], AnyProjection]
