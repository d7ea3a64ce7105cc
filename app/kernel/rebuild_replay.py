"""A rebuild's replay of one chunk of a partition into the shadow: its entries decoded and
projected, skipping what an operator discarded and what waits behind a failed entry of the
same key (as parking does live). An entry that fails is reported (`on_failed`) and holds its
key back for the rest of the build; the entries before it and of other keys still apply."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from app.kernel import keys
from app.kernel.handlers import Entry
from app.kernel.projection import Decoded, Projected, Projection, project
from app.kernel.redis_types import field_map


@dataclass
class ShadowPartition:
    """How far the shadow of one partition is."""

    cursor: str = "0-0"
    """The last entry read into the shadow."""
    versions: dict[str, int] = field(default_factory=dict)
    complete: bool = True
    """`versions` holds every aggregate the shadow has (else missing ones are read)."""
    held: dict[str, str] = field(default_factory=dict)
    """Keys held back (their first failed entry), for the rest of the build."""


class _Failed(Exception):
    def __init__(self, index: int, cause: Exception) -> None:
        super().__init__(str(cause))
        self.index = index
        self.cause = cause


class ChunkReplay:
    """Projects chunks of one projection's entries for a rebuild."""

    def __init__(
        self,
        projection: Projection[Any],
        discarded: set[tuple[str, str]],
        on_failed: Callable[[int, Entry, str, Exception], None],
    ) -> None:
        """`discarded`: (stream, entry id) an operator discarded. `on_failed(partition,
        entry, key, error)`: an entry that failed (its key is held back already)."""
        self._projection = projection
        self._discarded = discarded
        self._on_failed = on_failed
        self._order_key: Callable[[dict[str, str]], str] | None = getattr(
            projection, "order_key", None
        )

    def project(
        self, partition: int, part: ShadowPartition, stream: str, entries: list[Entry]
    ) -> Projected:
        decoded: list[Decoded] = []
        decode = self._projection.decode
        for entry in entries:
            if self._discarded and (stream, entry.id) in self._discarded:
                continue
            if part.held and self.key(entry) in part.held:
                continue
            try:
                decoded.append((entry, *decode(entry.fields)))
            except Exception as exc:
                self._failed(partition, part, entry, exc)
        while True:
            try:
                return self._apply(part.versions, decoded)
            except _Failed as failed:
                entry = decoded[failed.index][0]
                key = self.key(entry)
                self._failed(partition, part, entry, failed.cause)
                decoded = [  # its key's later entries wait behind it (none, if it has no key)
                    item
                    for index, item in enumerate(decoded)
                    if index < failed.index
                    or (index > failed.index and not (key and self.key(item[0]) == key))
                ]

    def _apply(self, versions: dict[str, int], decoded: list[Decoded]) -> Projected:
        done = Projected()
        try:
            return project(self._projection, decoded, versions, into=done)
        except Exception as exc:
            raise _Failed(done.seen - 1, exc) from exc

    async def load_versions(
        self,
        read: Redis,
        partition: int,
        part: ShadowPartition,
        entries: list[tuple[str, dict[str, str]]],
    ) -> None:
        """Resuming a shadow: the applied versions of the aggregates of these entries."""
        names = self.unknown_aggregates(entries, part.versions)
        if names:
            shadow_versions = keys.shadow(keys.applied_versions(self._projection.name, partition))
            found = await read.hmget(shadow_versions, names)
            part.versions.update({k: int(v or 0) for k, v in zip(names, found, strict=True)})

    def unknown_aggregates(
        self, entries: list[tuple[str, dict[str, str]]], versions: dict[str, int]
    ) -> list[str]:
        """The aggregates of these entries whose applied version is not in `versions`."""
        missing: dict[str, None] = {}
        for _, fields in entries:
            with contextlib.suppress(Exception):  # undecodable: it fails when applied
                found, _item = self._projection.decode(fields)
                if found is not None and found[0] not in versions:
                    missing[found[0]] = None
        return list(missing)

    def key(self, entry: Entry) -> str:
        return self._order_key(entry.fields) if self._order_key is not None else ""

    def _failed(self, partition: int, part: ShadowPartition, entry: Entry, exc: Exception) -> None:
        key = self.key(entry)
        if key:
            part.held[key] = entry.id
        self._on_failed(partition, entry, key, exc)


def queue_shadow_writes(
    pipe: Pipeline, name: str, partition: int, done: Projected, last: str
) -> None:
    """Queue a projected chunk's writes to the shadow: the read model's, its versions, a gap
    warning, and its checkpoint (`last`, the chunk's last entry)."""
    done.writes.send(pipe, keys.shadow)
    if done.versions:
        pipe.hset(
            keys.shadow(keys.applied_versions(name, partition)), mapping=field_map(done.versions)
        )
    if done.gaps:
        pipe.hset(
            keys.shadow(keys.projection_health(name, partition)),
            mapping=field_map({"gap": done.gaps[-1], "gap_at": str(time.time())}),
        )
    pipe.set(keys.shadow(keys.checkpoint(name, partition)), last)
