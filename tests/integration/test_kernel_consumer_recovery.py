"""A keyed consumer whose lane meets a Redis error resumes by itself (it used to stay wedged).

The process manager runs each key's entries in a lane of its own. When one lane's call to
Redis failed, the partition's loop re-raised that stored error every second, for good,
while its lease stayed fresh: accepted orders stayed `processing` until a restart.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from redis.exceptions import ConnectionError as RedisConnectionError

from app.kernel.consumer import Entry, PartitionedConsumer
from app.kernel.leases import Leases
from app.services import Services
from tests.support.kernel_catalog import pending
from tests.support.polling import eventually

GROUP = "test.keyed-outage"
PARTITIONS = 1


class FlakyKeyed:
    """Entries keyed by their `k` field; the first call for key `b` meets a lost connection."""

    group = GROUP

    def __init__(self) -> None:
        self.applied: Counter[str] = Counter()
        self.failures = 0

    def stream(self, partition: int) -> str:
        return f"test:keyed:{partition}"

    def key_of(self, entry: Entry) -> str:
        return entry.fields["k"]

    async def handle(self, partition: int, entries: list[Entry]) -> None:
        for entry in entries:
            if entry.fields["k"] == "b" and self.failures == 0:
                self.failures += 1
                raise RedisConnectionError("Connection closed by server.")
            self.applied[entry.fields["n"]] += 1

    async def skip(self, partition: int, entry: Entry) -> None:
        raise AssertionError("a connection error must never dead-letter an entry")


async def _one() -> int:
    return 1


async def test_a_lane_that_meets_a_connection_error_resumes_without_a_restart(
    services: Services,
) -> None:
    redis = services.write
    handler = FlakyKeyed()
    stream = handler.stream(0)
    for n, key in enumerate("abcab"):
        await redis.xadd(stream, {"k": key, "n": str(n)})
    consumer = PartitionedConsumer(
        redis, [handler], PARTITIONS, Leases(redis, "keyed-test"), _one, block_ms=100
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop, tick=0.1))
    try:

        async def applied() -> Counter[str]:
            return handler.applied

        await eventually(
            applied,
            until=lambda c: set(c) == {"0", "1", "2", "3", "4"},
            message="every entry applied after the lost connection",
        )
        await eventually(
            lambda: pending(redis, stream, GROUP), until=lambda n: n == 0, message="all acked"
        )
        await redis.xadd(stream, {"k": "c", "n": "late"})
        await eventually(applied, until=lambda c: c["late"] == 1, message="later entries flow")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)
    assert handler.failures == 1
    # at-least-once: an entry whose lane broke is read again (so may be seen twice), never lost
    assert all(1 <= count <= 2 for count in handler.applied.values()), handler.applied
