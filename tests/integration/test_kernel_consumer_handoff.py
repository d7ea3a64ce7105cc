"""Partitions change hands without waiting for a tick or a blocking read to run out.

When a second process joins, the first gives up the partitions over its share and the second
takes them. The giver's loops sit in blocking reads, and the taker looks for free partitions
once per tick; here both are a minute long, so the hand-over can only finish within the
test's deadline if the giver cancels its idle reads and the taker polls while partitions
change hands. What was added on either side of the hand-over is applied exactly once.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from app.kernel.consumer import Entry, PartitionedConsumer
from app.kernel.leases import Leases
from app.services import Services
from tests.support.polling import eventually

GROUP = "test.handoff"
PARTITIONS = 4
MINUTE_MS = 60_000


class Recording:
    group = GROUP

    def __init__(self) -> None:
        self.applied: Counter[str] = Counter()

    def stream(self, partition: int) -> str:
        return f"test:handoff:{{p{partition}}}"

    async def handle(self, partition: int, entries: list[Entry]) -> None:
        for entry in entries:
            self.applied[entry.fields["n"]] += 1

    async def skip(self, partition: int, entry: Entry) -> None:
        raise AssertionError("nothing here fails")


async def test_a_joining_process_takes_its_share_at_once_and_nothing_is_applied_twice(
    services: Services,
) -> None:
    redis = services.write
    handler = Recording()
    members = [1]

    async def count() -> int:
        return members[0]

    first = PartitionedConsumer(
        redis, [handler], PARTITIONS, Leases(redis, "first"), count, block_ms=MINUTE_MS
    )
    second = PartitionedConsumer(
        redis, [handler], PARTITIONS, Leases(redis, "second"), count, block_ms=MINUTE_MS
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(first.run(stop, tick=60.0))]
    try:
        for n in range(8):
            await redis.xadd(handler.stream(n % PARTITIONS), {"n": str(n)})
        await eventually(
            lambda: asyncio.sleep(0, (first.owned, set(handler.applied))),
            until=lambda found: len(found[0]) == PARTITIONS and len(found[1]) == 8,
            message="the first process owns every partition and applied what was there",
        )
        members[0] = 2
        tasks.append(asyncio.create_task(second.run(stop, tick=60.0)))
        # the first sees two members at its next tick: a minute away, so ask it now
        await first.rebalance()
        await eventually(
            lambda: asyncio.sleep(0, (len(first.owned), len(second.owned))),
            until=lambda owned: owned == (2, 2),
            message="each process owns two partitions",
        )
        for n in range(8, 16):
            await redis.xadd(handler.stream(n % PARTITIONS), {"n": str(n)})
        await eventually(
            lambda: asyncio.sleep(0, dict(handler.applied)),
            until=lambda applied: len(applied) == 16,
            message="what was added after the hand-over is applied",
        )
        assert set(handler.applied.values()) == {1}, handler.applied
    finally:
        stop.set()
        for consumer in (first, second):
            await consumer.release_all()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
