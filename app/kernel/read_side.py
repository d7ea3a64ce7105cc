"""The read side as queries see it: the read Redis, and the partitions its read models are in.

Every read-model key is of one partition (kernel/keys.py). A view that spans partitions keeps
one key per partition, and a query gathers them with one pipeline (`gather`): on one server
that is one round trip; on a Cluster, redis-py sends each node its share of the pipeline at
once, so it is one pipelined read per node. The helpers below merge the pieces back into what
one key would have held, in the same order, so a page or a limit answers exactly what a
single key answers for the same events.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from app.kernel.partitions import partition_of

T = TypeVar("T")
Read = Callable[[Pipeline, int], object]
"""Queues one command reading partition `p`'s key on the pipeline."""
Scored = tuple[str, float]
MIN_SHARE = 4
"""Members `first_after` asks each partition for at least (its fair share is often less)."""


@dataclass(frozen=True)
class ReadSide:
    redis: Redis
    partitions: int

    def partition_of(self, aggregate_id: str) -> int:
        """The partition of an aggregate's keys (the write side's mapping)."""
        return partition_of(aggregate_id, self.partitions)

    async def gather(self, *reads: Read) -> list[list[Any]]:
        """Each read, in every partition, on one pipeline: `[read][partition]` → its reply."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition in range(self.partitions):
                for read in reads:
                    read(pipe, partition)
            replies = await pipe.execute()
        return [replies[index :: len(reads)] for index in range(len(reads))]

    async def first_after(self, key: Callable[[int], str], after: str, count: int) -> list[str]:
        """The first `count` members after `after` ("" for from the start) of the partitions'
        sorted sets whose members all score alike (ordered by member), merged: what one such
        set would give. Each set is asked for a fair share and a margin; a set whose last
        member read still falls before the merged list's end may hold more before it, so it
        alone is read again, further on (rarely: usually one round trip)."""
        share = min(count, max(MIN_SHARE, -(-2 * count // self.partitions)))
        pieces: list[list[str]] = [[] for _ in range(self.partitions)]
        starts = {p: f"({after}" if after else "-" for p in range(self.partitions)}
        while starts:
            asked = sorted(starts)
            async with self.redis.pipeline(transaction=False) as pipe:
                for p in asked:
                    pipe.zrangebylex(key(p), starts[p], "+", start=0, num=share)
                replies = await pipe.execute()
            full = set()
            for p, members in zip(asked, replies, strict=True):
                pieces[p].extend(members)
                if len(members) == share:
                    full.add(p)
            first = merged(pieces, key=str, limit=count)
            end = first[-1] if len(first) == count else None
            starts = {p: f"({pieces[p][-1]}" for p in full if end is None or pieces[p][-1] < end}
            share = count
        return first

    async def summed_top(self, key: Callable[[int], str], count: int) -> list[Scored]:
        """The `count` members of the partitions' sorted sets whose scores, summed over the
        partitions, are highest (and above 0), ordered as ZREVRANGE orders one set (ties: the
        greater member first). Every per-partition score must be ≥ 0.

        Reads each set's top `depth` members, then every one of those candidates' scores in
        every partition: a member seen nowhere sums at most the sum of each full set's last
        score read, so once the last member kept beats that bound the answer is exact; else
        it reads deeper (a threshold algorithm: usually two round trips)."""
        depth = max(count, 1)
        while True:
            (tops,) = await self.gather(partial(_top, key, depth))
            candidates = sorted({member for top in tops for member, _ in top})
            if not candidates:
                return []
            (scores,) = await self.gather(partial(_scores, key, candidates))
            totals = [
                (member, sum(float(found[i] or 0) for found in scores))
                for i, member in enumerate(candidates)
            ]
            ranked = descending([(m, total) for m, total in totals if total > 0])[:count]
            unseen = sum(float(top[-1][1]) for top in tops if len(top) == depth)
            if unseen <= 0 or (len(ranked) == count and ranked[-1][1] > unseen):
                return ranked
            depth *= 2


def _top(key: Callable[[int], str], depth: int, pipe: Pipeline, partition: int) -> object:
    return pipe.zrevrange(key(partition), 0, depth - 1, withscores=True)


def _scores(
    key: Callable[[int], str], members: list[str], pipe: Pipeline, partition: int
) -> object:
    return pipe.zmscore(key(partition), members)


def descending(scored: Iterable[Scored]) -> list[Scored]:
    """By score, highest first, ties by member, greatest first (ZREVRANGE's order)."""
    return sorted(scored, key=lambda item: (item[1], item[0]), reverse=True)


def merged(
    pieces: Iterable[Iterable[T]],
    key: Callable[[T], Any],
    limit: int | None = None,
    *,
    reverse: bool = False,
) -> list[T]:
    """Per-partition lists, each already in `key` order, as one list in that order."""
    return list(itertools.islice(heapq.merge(*pieces, key=key, reverse=reverse), limit))


def summed(counts: Sequence[dict[str, str]]) -> dict[str, int]:
    """Per-partition hashes of counters, added up field by field."""
    total: dict[str, int] = {}
    for hash_ in counts:
        for name, value in hash_.items():
            total[name] = total.get(name, 0) + int(value)
    return total
