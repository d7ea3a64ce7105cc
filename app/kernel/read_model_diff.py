"""Comparing two copies of a read model key by key (a rebuild's shadow against the live one)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from app.kernel import keys
from app.kernel.partitions import tagged_partition
from app.kernel.redis_types import text

SAMPLE = 10
CHUNK = 500


class KeyDifference(msgspec.Struct, frozen=True):
    key: str
    detail: str


class Diff(msgspec.Struct, frozen=True, kw_only=True):
    live_keys: int
    shadow_keys: int
    only_live: int = 0
    only_shadow: int = 0
    differing: int = 0
    sample: list[KeyDifference] = []
    """A few of the keys that differ (live names), and how."""

    @property
    def same(self) -> bool:
        return not (self.only_live or self.only_shadow or self.differing)

    @property
    def summary(self) -> str:
        if self.same:
            return f"no differences ({self.live_keys} keys)"
        return (
            f"{self.differing} of {self.live_keys} keys differ, {self.only_live} only live, "
            f"{self.only_shadow} only in the shadow"
        )


async def scan(redis: Redis, prefix: str) -> set[str]:
    """Every key starting with `prefix` (which must hold no glob characters)."""
    return {text(key) async for key in redis.scan_iter(match=f"{prefix}*", count=1000)}


async def live_and_shadow_keys(
    redis: Redis, name: str, partition: int | None = None
) -> tuple[set[str], set[str]]:
    """A read model's live keys, and its shadow's (by the live names they stand for); those
    of one partition if given."""
    prefix = keys.read_model_prefix(name)
    if partition is not None:
        prefix = keys.read_model(name, partition, "")
    live = await scan(redis, prefix)
    copies = await scan(redis, keys.shadow(prefix))
    shadowed = len(keys.shadow(""))
    return live, {key[shadowed:] for key in copies}


def by_partition(names: set[str]) -> dict[int, set[str]]:
    """Read-model keys grouped by the partition they belong to."""
    grouped: dict[int, set[str]] = {}
    for name in names:
        grouped.setdefault(tagged_partition(name), set()).add(name)
    return grouped


def queue_swap(tx: Pipeline, live: set[str], shadow: set[str]) -> None:
    """Queue on a transaction what swaps a shadow in: each shadow key renamed over its live
    key, and the live keys the shadow has not deleted (keys by their live names)."""
    for key in shadow:  # (redis-py's cluster pipeline refuses `rename`; in a slot it is fine)
        tx.execute_command("RENAME", keys.shadow(key), key)
    stale = sorted(live - shadow)
    for start in range(0, len(stale), 500):
        tx.delete(*stale[start : start + 500])


async def drop_shadow(redis: Redis, name: str) -> None:
    """Delete a read model's shadow (what a rebuild built and did not swap in)."""
    copies = sorted(await scan(redis, keys.shadow(keys.read_model_prefix(name))))
    for start in range(0, len(copies), 500):
        await redis.delete(*copies[start : start + 500])


async def values(redis: Redis, names: Sequence[str]) -> list[object]:
    """Each key's whole value, whatever its type (None: no such key)."""
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.type(name)
        kinds = [text(kind) for kind in await pipe.execute()]
    async with redis.pipeline(transaction=False) as pipe:
        for name, kind in zip(names, kinds, strict=True):
            if kind == "hash":
                pipe.hgetall(name)
            elif kind == "zset":
                pipe.zrange(name, 0, -1, withscores=True)
            elif kind == "list":
                pipe.lrange(name, 0, -1)
            elif kind == "set":
                pipe.smembers(name)
            elif kind == "string":
                pipe.get(name)
            else:
                pipe.exists(name)  # a placeholder reply: streams are not read models
        found = await pipe.execute()
    result: list[object] = []
    for kind, value in zip(kinds, found, strict=True):
        if kind == "none":
            result.append(None)
        elif kind == "zset":
            result.append(dict(value))
        else:
            result.append(value)
    return result


def describe(live: object, shadow: object) -> str:
    """How two values of one key differ, in a line."""
    if isinstance(live, dict) and isinstance(shadow, dict):
        for name in sorted(live.keys() | shadow.keys()):
            if live.get(name) != shadow.get(name):
                return f"{name}: live {live.get(name)!r}, rebuilt {shadow.get(name)!r}"
    if isinstance(live, list) and isinstance(shadow, list):
        return f"list of {len(live)} live, {len(shadow)} rebuilt (or in another order)"
    return f"live {str(live)[:80]!r}, rebuilt {str(shadow)[:80]!r}"


async def compare(
    redis: Redis,
    live: set[str],
    shadow: set[str],
    copy_of: Callable[[str], str],
    ignored: Callable[[str], bool],
) -> Diff:
    """`live` and `shadow` name keys by their live names; `copy_of` gives a shadow key's real
    name. Keys for which `ignored` holds are left out."""
    live = {key for key in live if not ignored(key)}
    shadow = {key for key in shadow if not ignored(key)}
    only_live = sorted(live - shadow)
    only_shadow = sorted(shadow - live)
    sample = [KeyDifference(key, "only live") for key in only_live[:SAMPLE]]
    sample += [KeyDifference(key, "only rebuilt") for key in only_shadow[:SAMPLE]]
    differing = 0
    common = sorted(live & shadow)
    for start in range(0, len(common), CHUNK):
        names = common[start : start + CHUNK]
        mine = await values(redis, names)
        theirs = await values(redis, [copy_of(name) for name in names])
        for name, a, b in zip(names, mine, theirs, strict=True):
            if a != b:
                differing += 1
                if len(sample) < 3 * SAMPLE:
                    sample.append(KeyDifference(name, describe(a, b)))
    return Diff(
        live_keys=len(live),
        shadow_keys=len(shadow),
        only_live=len(only_live),
        only_shadow=len(only_shadow),
        differing=differing,
        sample=sample,
    )


def merged_diffs(diffs: Sequence[Diff]) -> Diff:
    """The diffs of a read model's partitions as one."""
    return Diff(
        live_keys=sum(d.live_keys for d in diffs),
        shadow_keys=sum(d.shadow_keys for d in diffs),
        only_live=sum(d.only_live for d in diffs),
        only_shadow=sum(d.only_shadow for d in diffs),
        differing=sum(d.differing for d in diffs),
        sample=[k for d in diffs for k in d.sample][: 3 * SAMPLE],
    )
