"""One read model in the projector's pass (kernel/projector_pass.py): the entries it takes
from the pass's shared decoding, and its failures, kept to itself.

An entry that fails for a read model is tried again at once (applying is pure: no reads,
nothing to wait for), up to MAX_ATTEMPTS, each failure counted in the read model's health
as a retry; then it is dead-lettered in the read model's own dead letters
(`projection.<name>`), its key parked behind it, and the later entries of that key wait
behind it as letters — for that read model alone: the others take the entry as usual.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Union

import msgspec
from opentelemetry.trace import Span
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from app.kernel import keys, tracing, unions
from app.kernel.batch_applier import MAX_ATTEMPTS
from app.kernel.consumer_health import record_error
from app.kernel.event_entries import event_head, stored_event
from app.kernel.handlers import Entry
from app.kernel.parking import Parking
from app.kernel.projection import (
    Applied,
    Decoded,
    EventProjection,
    Projected,
    Projection,
    ProjectionHandler,
    project,
)
from app.kernel.redis_types import field_map

log = logging.getLogger(__name__)


class Broken:
    """An entry the shared decoding could not read: each read model that needs it decodes
    it on its own (and dead-letters it if that fails too)."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


Head = tuple[str, tuple[str, int] | None, Any]
"""An entry's type ("" if unknown), its (aggregate, version), and its shared item or None."""


class PassModel:
    """A read model of the pass, with its own adapter (`ProjectionHandler`: its group name,
    spans, dead letters replayed by an operator) and its dead letters per partition."""

    def __init__(self, handler: ProjectionHandler, write: Redis) -> None:
        self.handler = handler
        self.projection: Projection[Any] = handler.projection
        self.name = handler.projection.name
        self.group = handler.group
        self._write = write
        projection = handler.projection
        shares = (
            isinstance(projection, EventProjection)
            and type(projection).decode is EventProjection.decode
            and type(projection).declared is not None
        )
        self.declared: object = None
        self.shared: frozenset[str] | None = None
        """The event types it takes from the shared decoding (None: it decodes alone)."""
        if isinstance(projection, EventProjection) and shares:
            self.declared, self.shared = type(projection).declared, type(projection).handles
        self.committed: Callable[[list[Any]], None] | None = getattr(projection, "committed", None)
        self._parkings: dict[int, Parking] = {}

    def parking(self, partition: int) -> Parking:
        found = self._parkings.get(partition)
        if found is None:
            found = self._parkings[partition] = Parking(self._write, self.handler, partition)
        return found

    async def items(self, partition: int, entries: list[Entry], heads: list[Head]) -> list[Decoded]:
        """Its decoded entries; those of its parked keys are set aside, those it cannot
        decode dead-lettered."""
        parking = self.parking(partition)
        free = await parking.hold(entries)
        kept = {entry.id for entry in free} if len(free) < len(entries) else None
        items: list[Decoded] = []
        waiting: list[Entry] = []
        """Entries behind one dead-lettered here, of the same key."""
        for entry, (kind, version, shared) in zip(entries, heads, strict=True):
            if kept is not None and entry.id not in kept:
                continue
            if parking.parked and parking.held(entry):
                waiting.append(entry)
                continue
            if self.shared is not None and not isinstance(shared, Broken):
                items.append((entry, version, shared if kind in self.shared else None))
                continue
            try:
                items.append((entry, *self.projection.decode(entry.fields)))
            except Exception as exc:
                decoded = await self._decode_again(partition, entry, exc)
                if decoded is not None:
                    items.append(decoded)
        await parking.hold(waiting)
        return items

    async def _decode_again(
        self, partition: int, entry: Entry, failure: Exception
    ) -> Decoded | None:
        error = f"{type(failure).__name__}: {failure}"
        for _attempt in range(MAX_ATTEMPTS - 1):
            await record_error(self._write, self.group, error, dead_letter=False)
            try:
                found, item = self.projection.decode(entry.fields)
                return entry, found, item
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
        await self._dead_letter(partition, entry, error)
        return None

    async def project(
        self, partition: int, items: list[Decoded], versions: dict[str, int], spans: list[Span]
    ) -> Projected:
        """`project`, with an entry that keeps failing dead-lettered for this read model and
        the later entries of its key set aside behind it. The `process` spans of the traced
        entries applied go to `spans`."""
        attempts: dict[str, int] = {}
        while True:
            done = Projected()
            tried: list[Span] = []
            try:
                project(
                    self.projection,
                    items,
                    versions,
                    into=done,
                    trace=self._tracer(partition, tried),
                )
            except Exception as exc:
                for span in tried:
                    tracing.end(span, type(exc).__name__)
                index = done.seen - 1
                entry = items[index][0]
                error = f"{type(exc).__name__}: {exc}"
                log.exception("%s: entry %s failed", self.group, entry.id)
                attempts[entry.id] = attempts.get(entry.id, 0) + 1
                if attempts[entry.id] < MAX_ATTEMPTS:
                    await record_error(self._write, self.group, error, dead_letter=False)
                    continue
                await self._dead_letter(partition, entry, error)
                key = self.handler.order_key(entry)
                waiting = [
                    item[0]
                    for item in items[index + 1 :]
                    if key is not None and self.handler.order_key(item[0]) == key
                ]
                await self.parking(partition).hold(waiting)
                left = {e.id for e in waiting} | {entry.id}
                items = [item for item in items if item[0].id not in left]
                continue
            spans += tried
            return done

    def _tracer(self, partition: int, spans: list[Span]) -> Callable[[Entry], str] | None:
        if not tracing.enabled():
            return None

        def trace(entry: Entry) -> str:
            parent = entry.fields.get(tracing.FIELD, "")
            return self.handler.process_span(partition, entry, parent, spans) if parent else ""

        return trace

    async def _dead_letter(self, partition: int, entry: Entry, error: str) -> None:
        await self.parking(partition).give_up(entry, error, MAX_ATTEMPTS)
        await record_error(self._write, self.group, error, dead_letter=True)

    def record(self, partition: int, done: Projected, tx: Pipeline) -> None:
        """Queue its writes, versions and gap (if any) on `tx`."""
        if done.gaps:
            tx.hset(
                keys.projection_health(self.name, partition),
                mapping=field_map({"gap": done.gaps[-1], "gap_at": str(time.time())}),
            )
        done.writes.send(tx)
        if done.versions:
            tx.hset(keys.applied_versions(self.name, partition), mapping=field_map(done.versions))


def shared_decoder(models: Iterable[PassModel]) -> msgspec.json.Decoder[Any] | None:
    """One decoder of every event the models take from the shared decoding."""
    members = tuple(
        dict.fromkeys(
            member
            for model in models
            if model.declared is not None
            for member in unions.members(model.declared)
        )
    )
    return msgspec.json.Decoder(Union[members]) if members else None  # noqa: UP007


def decode_heads(
    entries: list[Entry], wanted: frozenset[str], decoder: msgspec.json.Decoder[Any] | None
) -> list[Head]:
    """Each entry's head, and its event decoded once if its type is `wanted`."""
    heads: list[Head] = []
    for entry in entries:
        try:
            head = event_head(entry.fields)
        except Exception as exc:
            heads.append(("", None, Broken(exc)))
            continue
        item: Any = None
        if decoder is not None and head.type in wanted:
            try:
                stored = stored_event(entry.fields)
                item = Applied("", stored, decoder.decode(stored.data))
            except Exception as exc:
                item = Broken(exc)
        heads.append((head.type, (head.aggregate, head.version), item))
    return heads
