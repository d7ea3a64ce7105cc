"""PartitionedConsumer: an entry that always fails is retried, dead-lettered and skipped."""

from __future__ import annotations

import asyncio
from collections import Counter

import msgspec

from app.kernel import keys
from app.kernel.consumer import (
    MAX_ATTEMPTS,
    DeadLetter,
    Entry,
    PartitionedConsumer,
)
from app.kernel.leases import Leases
from app.services import Services
from tests.support.kernel_catalog import pending
from tests.support.polling import eventually

GROUP = "test.poison"
PARTITIONS = 2


class PoisonSensitive:
    """Records every entry it applies; raises on any batch holding a `poison` entry."""

    group = GROUP

    def __init__(self) -> None:
        self.applied: Counter[str] = Counter()
        self.calls_with_poison = 0
        self.skipped: list[str] = []

    def stream(self, partition: int) -> str:
        return f"test:poison:{partition}"

    async def handle(self, partition: int, entries: list[Entry]) -> None:
        if any("poison" in e.fields for e in entries):
            self.calls_with_poison += 1
            raise ValueError("cannot digest this entry")
        for entry in entries:
            self.applied[entry.fields["n"]] += 1

    async def skip(self, partition: int, entry: Entry) -> None:
        self.skipped.append(entry.id)


async def _one() -> int:
    return 1


async def test_an_entry_that_always_fails_is_dead_lettered_and_later_entries_still_apply(
    services: Services,
) -> None:
    """After MAX_ATTEMPTS single retries the entry goes to dlq:<group>, the health hash
    records the error and the count, the handler's skip marks it, every other entry of
    the batch and after it is applied, and nothing stays pending."""
    redis = services.write
    handler = PoisonSensitive()
    stream = handler.stream(1)
    for i in range(3):
        await redis.xadd(stream, {"n": str(i)})
    poison = await redis.xadd(stream, {"poison": "yes"})
    for i in range(3, 6):
        await redis.xadd(stream, {"n": str(i)})
    consumer = PartitionedConsumer(
        redis, [handler], PARTITIONS, Leases(redis, "retry-test"), _one, block_ms=100
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop, tick=0.1))
    try:
        letters = await eventually(
            lambda: redis.xrange(keys.dead_letters(GROUP)), until=bool, message="dead letter"
        )
        await eventually(
            lambda: pending(redis, stream, GROUP), until=lambda n: n == 0, message="acked"
        )
        await redis.xadd(stream, {"n": "late"})

        async def late_applied() -> int:
            return handler.applied["late"]

        await eventually(late_applied, until=lambda n: n == 1, message="a later entry applied")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)

    [(_, fields)] = letters
    letter = msgspec.json.decode(fields["e"], type=DeadLetter)
    assert (letter.group, letter.stream, letter.entry_id) == (GROUP, stream, poison)
    assert letter.fields == {"poison": "yes"}
    assert letter.error == "ValueError: cannot digest this entry"
    assert handler.calls_with_poison == 1 + MAX_ATTEMPTS  # the batch, then one by one
    assert handler.skipped == [poison]
    assert handler.applied == Counter([*map(str, range(6)), "late"])
    health = await redis.hgetall(keys.consumer_health(GROUP))
    assert health["dead_letters"] == "1"
    assert health["retries"] == str(MAX_ATTEMPTS)
    assert health["last_error"] == "ValueError: cannot digest this entry"
    assert float(health["last_error_at"]) > 0
