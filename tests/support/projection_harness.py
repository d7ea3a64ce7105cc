"""Projections without Redis: events in; the writes they record and the views they change out.

`project_events` feeds a projection the way the projector does: each event becomes the stream
entry a commit writes, the projection decodes it (or skips it unread), and
`kernel.projection.project` applies it unless its version was applied already. What comes
back is plain data: the writes as the Redis commands they would send, in order (values as
Redis stores them), the views announced, the versions moved and any gap seen.

    run = project_events(CatalogProjection(), [ProductRenamed("MUG-1", "Cup")])
    assert run.writes == [("hset", keys.product(PARTITION, "MUG-1"), {"name": "Cup"})]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec

from app.aggregates import ORDER, PRODUCT
from app.domain.events import DomainEvent
from app.domain.orders import OrderEvent
from app.domain.products import ProductEvent
from app.kernel import unions
from app.kernel.consumer import Entry
from app.kernel.decisions import event_fields
from app.kernel.messages import StoredEvent
from app.kernel.projection import Applied, Projection, project
from app.kernel.read_model_writes import ReadModelWrites, Value, redis_text

AT = 1_700_000_000.0
"""When the events of a test were committed, unless it says otherwise."""
PARTITION = 3
"""The partition a test's entries are read from (every key written carries its tag)."""

Command = tuple[Any, ...]
"""A Redis command: its name, its key, then its arguments, e.g. ("hincrby", key, field, 1)."""


class Stamped(NamedTuple):
    """A domain event with the envelope a test wants for it: its aggregate's version, its time."""

    event: msgspec.Struct
    version: int
    at: float = AT


def aggregate_of(event: msgspec.Struct) -> str:
    """`kind:id` of a domain event's aggregate, as its stream entry names it."""
    if isinstance(event, unions.members(ProductEvent)):
        return f"{PRODUCT.name}:{event.sku}"
    if isinstance(event, unions.members(OrderEvent)):
        return f"{ORDER.name}:{event.order_id}"
    raise TypeError(f"{type(event).__name__} is not a domain event")


def stored(event: msgspec.Struct, version: int = 1, at: float = AT) -> StoredEvent:
    """The event as a commit stores it."""
    kind, _, aggregate_id = aggregate_of(event).partition(":")
    return StoredEvent(
        type=type(event).__name__,
        aggregate=kind,
        aggregate_id=aggregate_id,
        version=version,
        command_id=f"c-{aggregate_id}-{version}",
        at=at,
        data=msgspec.Raw(msgspec.json.encode(event)),
    )


def applied(event: msgspec.Struct, version: int = 1, at: float = AT) -> Applied[Any]:
    """The event as an event projection's `apply` gets it."""
    return Applied("1-0", stored(event, version, at), event)


def entry(item: msgspec.Struct, entry_id: str = "1-0", version: int = 1, at: float = AT) -> Entry:
    """A stream entry holding `item`: a domain event as the commit writes it (type, aggregate
    and version beside the JSON); anything else (a journal entry, an integration event) as
    the JSON of its `e` field."""
    if isinstance(item, unions.members(DomainEvent)):
        flat = event_fields(stored(item, version, at))
        return Entry(entry_id, PARTITION, dict(zip(flat[::2], flat[1::2], strict=True)))
    return Entry(entry_id, PARTITION, {"e": msgspec.json.encode(item).decode()})


@dataclass
class Run:
    writes: list[Command]
    """What the projection recorded, as the commands sent to Redis (writes to one key within
    the run combined, as the runtime combines them within a batch)."""
    changes: list[tuple[str, str]]
    """(view, key) of every change announced to the WebSocket hubs, in order, once each."""
    applied: int
    """How many items were applied (not skipped as duplicates, not left undecoded)."""
    versions: dict[str, int]
    """Aggregates whose applied version moved, and to what."""
    gaps: list[str]


def project_events(
    projection: Projection[Any],
    items: Iterable[msgspec.Struct | Stamped],
    applied_before: Mapping[str, int] | None = None,
) -> Run:
    """Run items through `projection` as one batch. `applied_before`: the version applied last
    per aggregate (`aggregate_of`). A domain event not `Stamped` gets its aggregate's next
    version, so a plain list of events is a history without duplicates or gaps."""
    before = dict(applied_before or {})
    latest = dict(before)
    decoded = []
    for index, item in enumerate(items, start=1):
        event, version, at = item if isinstance(item, Stamped) else (item, 0, AT)
        if not version and isinstance(event, unions.members(DomainEvent)):
            version = latest.get(aggregate_of(event), 0) + 1
        if version:
            latest[aggregate_of(event)] = max(version, latest.get(aggregate_of(event), 0))
        found = entry(event, f"{index}-0", version, at)
        decoded.append((found, *projection.decode(found.fields)))
    done = project(projection, decoded, before)
    return Run(
        writes=redis_commands(done.writes),
        changes=list(done.changes),
        applied=len(done.applied),
        versions=done.versions,
        gaps=done.gaps,
    )


def redis_commands(writes: ReadModelWrites) -> list[Command]:
    """The commands `writes` sends, in order, as plain tuples."""
    recorder = _Recorder()
    writes.send(recorder)  # type: ignore[arg-type]
    return recorder.commands


class _Recorder:
    """Stands in for a pipeline: records each command `ReadModelWrites.send` queues."""

    def __init__(self) -> None:
        self.commands: list[Command] = []

    def hset(self, key: str, mapping: Mapping[str, Value]) -> None:
        self.commands.append(("hset", key, {f: redis_text(v) for f, v in mapping.items()}))

    def hincrby(self, key: str, field: str, amount: int) -> None:
        self.commands.append(("hincrby", key, field, amount))

    def zadd(self, key: str, mapping: Mapping[str, float]) -> None:
        self.commands.append(("zadd", key, dict(mapping)))

    def zrem(self, key: str, *members: str) -> None:
        self.commands.append(("zrem", key, *members))

    def zincrby(self, key: str, amount: float, member: str) -> None:
        self.commands.append(("zincrby", key, amount, member))

    def incrby(self, key: str, amount: int) -> None:
        self.commands.append(("incrby", key, amount))

    def lpush(self, key: str, *values: Value) -> None:
        self.commands.append(("lpush", key, *(redis_text(v) for v in values)))

    def rpush(self, key: str, *values: Value) -> None:
        self.commands.append(("rpush", key, *(redis_text(v) for v in values)))

    def ltrim(self, key: str, start: int, end: int) -> None:
        self.commands.append(("ltrim", key, start, end))

    def expire(self, key: str, seconds: int) -> None:
        self.commands.append(("expire", key, seconds))

    def expireat(self, key: str, when: int) -> None:
        self.commands.append(("expireat", key, when))


def json_text(value: object) -> str:
    """A value as the JSON a projection stores (e.g. to compare with a list's value)."""
    return msgspec.json.encode(value).decode()
