"""What the latest rebuild of each projection is doing (or did): its state, kept in Redis for
the status page, the terminal and a later swap."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import msgspec
from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.read_model_diff import Diff

STATE_TTL_SECONDS = 7 * 24 * 3600

Phase = Literal["building", "diffing", "ready", "swapping", "swapped", "abandoned", "failed"]
RUNNING: frozenset[str] = frozenset({"building", "diffing", "swapping"})


class RebuildState(msgspec.Struct, frozen=True, kw_only=True):
    """The latest rebuild of a projection, as the status page and the terminal show it."""

    projection: str
    phase: Phase
    by: str = ""
    started_at: float
    updated_at: float
    done: int = 0
    """Entries read so far."""
    total: int = 0
    """Entries to read (an estimate while the live projection moves on)."""
    rate: float = 0.0
    """Entries per second, over the last few seconds."""
    eta_seconds: float | None = None
    position: str = ""
    """Where the shadow is, per partition (`partition:entry id`, comma-separated)."""
    diff: Diff | None = None
    failed: int = 0
    failures: list[str] = []
    """A sample of the entries that failed (each holds its key back)."""
    held: dict[str, dict[str, str]] = {}
    """Partition → key held back → the entry that failed."""
    error: str = ""

    @property
    def percent(self) -> int:
        return min(100, 100 * self.done // self.total) if self.total else 0


_state = msgspec.json.Decoder(RebuildState)


async def save_state(redis: Redis, state: RebuildState) -> None:
    await redis.set(
        keys.rebuild_state(state.projection), msgspec.json.encode(state), ex=STATE_TTL_SECONDS
    )


async def load_state(redis: Redis, projection: str) -> RebuildState | None:
    raw = await redis.get(keys.rebuild_state(projection))
    return _state.decode(raw) if raw else None


async def rebuild_states(redis: Redis, projections: Sequence[str]) -> list[RebuildState]:
    """The latest rebuild of each named projection that had one."""
    async with redis.pipeline(transaction=False) as pipe:  # keys of several Cluster slots
        for name in projections:
            pipe.get(keys.rebuild_state(name))
        raw = await pipe.execute()
    return [_state.decode(value) for value in raw if value]


class ProgressRate:
    """Entries per second over the last `window` seconds of samples."""

    def __init__(self, window: float) -> None:
        self._window = window
        self._samples: list[tuple[float, int]] = []

    def sample(self, now: float, done: int) -> float:
        self._samples = [s for s in self._samples if now - s[0] <= self._window]
        self._samples.append((now, done))
        first_at, first_done = self._samples[0]
        return (done - first_done) / (now - first_at) if now > first_at else 0.0


async def entries_to_read(redis: Redis, streams: Sequence[str], group: str) -> int:
    """Entries the group has read of the streams (Redis 7), else the streams' lengths."""
    async with redis.pipeline(transaction=False) as pipe:
        for stream in streams:
            pipe.xinfo_groups(stream)
            pipe.xlen(stream)
        replies = await pipe.execute(raise_on_error=False)
    total = 0
    for groups, length in zip(replies[::2], replies[1::2], strict=True):
        mine = _group(groups, group)
        read = mine.get("entries-read") if mine else None
        total += int(read) if read is not None else int(length or 0)
    return total


def _group(groups: object, name: str) -> dict[str, Any] | None:
    if not isinstance(groups, list):
        return None
    found: Iterable[dict[str, Any]] = (g for g in groups if isinstance(g, dict))
    return next((g for g in found if g.get("name") == name), None)
