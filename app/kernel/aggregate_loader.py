"""Reading aggregates' states for the bus: a batch's in one pipeline, a process's on demand.

A batch reads the aggregates this process has not cached (version, last writer and state)
together with the other aggregates its commands look up, in one pipeline. A process asking
for one aggregate shares its round trip with whoever asks at the same moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import msgspec
from redis.asyncio import Redis

from app.kernel import keys, tracing
from app.kernel.aggregate_cache import AggregateCache, Known
from app.kernel.bus_timing import RoundTiming
from app.kernel.coalescer import Coalescer
from app.kernel.decisions import BatchAggregate
from app.kernel.messages import CommandEnvelope
from app.kernel.partitions import partition_of
from app.kernel.registry import AggregateKind, Registry

S = TypeVar("S", bound=msgspec.Struct)


class AggregateLoader:
    def __init__(
        self, redis: Redis, registry: Registry, partitions: int, cache: AggregateCache
    ) -> None:
        self._redis = redis
        self._registry = registry
        self._partitions = partitions
        self._cache = cache
        self._loads: Coalescer[str, str | None] = Coalescer(self._read_states)
        self._warms: Coalescer[str, list[str | None]] = Coalescer(self._read_known)

    async def load(
        self, kind: AggregateKind[S], aggregate_id: str, *, cached: bool = False
    ) -> S | None:
        """An aggregate's current state, for a process deciding its next step.

        `cached`: what this process last saw will do (for parts of it that never change).
        """
        key = keys.aggregate(partition_of(aggregate_id, self._partitions), kind.name, aggregate_id)
        known = self._cache.get(key) if cached else None
        if known is not None and isinstance(known.state, kind.state_type):
            return known.state
        (raw,) = await self._loads.submit([key])  # loads made together share a round trip
        return kind.decoder.decode(raw) if raw else None

    async def warm(self, kind: AggregateKind[S], aggregate_id: str) -> None:
        """Read an aggregate into this process's cache ahead of a command on it (while this
        process waits on something else), so that command needs no read of its own. A stale
        copy costs no more than a miss: the commit's version check catches it."""
        key = keys.aggregate(partition_of(aggregate_id, self._partitions), kind.name, aggregate_id)
        if self._cache.get(key) is not None:
            return
        (found,) = await self._warms.submit([key])
        known = _known(kind, found)
        if known.state is not None and self._cache.get(key) is None:  # (or cached meanwhile)
            self._cache.put(key, known)

    async def _read_known(self, state_keys: list[str]) -> list[list[str | None]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in state_keys:
                pipe.hmget(key, "v", "w", "s")
            return list(await pipe.execute())

    async def _read_states(self, state_keys: list[str]) -> list[str | None]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in state_keys:
                pipe.hget(key, "s")
            return list(await pipe.execute())

    async def load_round(
        self,
        envelopes: Sequence[CommandEnvelope],
        pending: list[BatchAggregate],
        timing: RoundTiming | None = None,
    ) -> dict[str, Any]:
        """States of the aggregates not known yet, and the other aggregates commands look up,
        in one pipeline. Returns the looked-up states by aggregate id."""
        for aggregate in pending:
            if aggregate.known is None:
                aggregate.known = self._cache.get(aggregate.key)
                aggregate.loaded = False
        unknown = [a for a in pending if a.known is None]
        wanted: dict[str, tuple[AggregateKind[Any], str]] = {}
        for aggregate in pending:
            for index in aggregate.waiting:
                spec = self._registry.spec(envelopes[index].type)
                if spec.lookups is None:
                    continue
                command = self._registry.decode_body(envelopes[index].type, envelopes[index].body)
                for kind, other_id in spec.lookups(command):
                    other_partition = partition_of(other_id, self._partitions)
                    wanted[keys.aggregate(other_partition, kind.name, other_id)] = (kind, other_id)
        if not unknown and not wanted:
            return {}
        load_start = tracing.now_ns() if timing is not None else 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for aggregate in unknown:
                pipe.hmget(aggregate.key, "v", "w", "s")
            for other in wanted:
                pipe.hget(other, "s")
            replies = list(await pipe.execute())
        if timing is not None:
            timing.loaded = (load_start, tracing.now_ns())
        states, found = replies[: len(unknown)], replies[len(unknown) :]
        for aggregate, fields in zip(unknown, states, strict=True):
            aggregate.known = _known(aggregate.kind, fields)
            aggregate.loaded = True
        return {
            other_id: kind.decoder.decode(raw) if raw else None
            for (kind, other_id), raw in zip(wanted.values(), found, strict=True)
        }


def _known(kind: AggregateKind[Any], found: Sequence[str | None]) -> Known:
    """An aggregate as its hash's `v`, `w` and `s` fields give it (all None: none yet)."""
    version, writer, state = found
    return Known(int(version or 0), writer or "", kind.decoder.decode(state) if state else None)
