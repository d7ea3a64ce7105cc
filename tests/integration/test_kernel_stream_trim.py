"""Streams trimmed once their consumer groups are done with them (kernel/stream_trim.py):
never an entry a group has not been given, nor one it has not acknowledged."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from app.config import Settings
from app.domain.products import CreateProduct, RestockProduct
from app.kernel import keys
from app.kernel.consumer import Entry, PartitionedConsumer
from app.kernel.leases import Leases
from app.kernel.stream_trim import trim_consumed
from app.services import Services
from tests.integration.conftest import ADMIN, running_workers
from tests.support.kernel_catalog import final_status
from tests.support.polling import eventually

STREAM = "{p0}:test:trimmed"


async def _ids(redis: Redis, stream: str) -> list[str]:
    return [entry_id for entry_id, _ in await redis.xrange(stream)]


async def _fill(redis: Redis, count: int) -> list[str]:
    return [await redis.xadd(STREAM, {"n": str(n)}) for n in range(count)]


async def test_a_stream_without_groups_is_never_trimmed(services: Services) -> None:
    written = await _fill(services.write, 3)
    assert await trim_consumed(services.write, STREAM) == 0
    assert await _ids(services.write, STREAM) == written


async def test_entries_a_group_was_not_given_or_did_not_acknowledge_stay(
    services: Services,
) -> None:
    """Acknowledged entries go; the first pending one and everything after it stay, and so
    does what was never delivered."""
    redis = services.write
    written = await _fill(services.write, 6)
    await redis.xgroup_create(STREAM, "g", id="0")
    await redis.xreadgroup("g", "c", {STREAM: ">"}, count=4)  # 0..3 delivered
    await redis.xack(STREAM, "g", written[0], written[1], written[3])  # 2 still pending

    assert await trim_consumed(redis, STREAM) == 2
    assert await _ids(redis, STREAM) == written[2:]

    await redis.xack(STREAM, "g", written[2])
    assert await trim_consumed(redis, STREAM) == 2  # up to the last delivered: 4, 5 stay
    assert await _ids(redis, STREAM) == written[4:]


async def test_the_group_furthest_behind_decides(services: Services) -> None:
    redis = services.write
    written = await _fill(services.write, 5)
    for group, delivered in (("fast", 5), ("slow", 2)):
        await redis.xgroup_create(STREAM, group, id="0")
        await redis.xreadgroup(group, "c", {STREAM: ">"}, count=delivered)
        await redis.xack(STREAM, group, *written[:delivered])

    assert await trim_consumed(redis, STREAM) == 2
    assert await _ids(redis, STREAM) == written[2:]


async def test_a_retention_keeps_acknowledged_entries_until_they_are_old_enough(
    services: Services,
) -> None:
    redis = services.write
    old = await redis.xadd(STREAM, {"n": "old"}, id=f"{int(time.time() * 1000) - 60_000}-0")
    recent = await _fill(services.write, 2)
    await redis.xgroup_create(STREAM, "g", id="0")
    await redis.xreadgroup("g", "c", {STREAM: ">"})
    await redis.xack(STREAM, "g", old, *recent)

    assert await trim_consumed(redis, STREAM, retention_seconds=30) == 1
    assert await _ids(redis, STREAM) == recent


class Deferring:
    """A handler that acknowledges `slow` entries itself, later (like a bulk import's)."""

    group = "test.trim"
    retention_seconds = 0.0

    def __init__(self) -> None:
        self.deferred: list[str] = []
        self.handled: list[str] = []

    def stream(self, partition: int) -> str:
        return STREAM

    async def handle(self, partition: int, entries: list[Entry]) -> list[str]:
        self.handled += [e.fields["n"] for e in entries]
        slow = [e.id for e in entries if e.fields["n"] == "slow"]
        self.deferred += slow
        return slow

    async def skip(self, partition: int, entry: Entry) -> None:
        raise AssertionError("nothing fails here")


async def _one() -> int:
    return 1


async def test_a_consumer_trims_what_it_acknowledged_and_keeps_what_runs_on(
    services: Services,
) -> None:
    """The owner trims as it reads: acknowledged entries go, an entry still running in the
    background (and everything after it) stays until it is acknowledged too."""
    redis = services.write
    handler = Deferring()
    await redis.xadd(STREAM, {"n": "first"})
    slow = await redis.xadd(STREAM, {"n": "slow"})
    later = [await redis.xadd(STREAM, {"n": f"later-{n}"}) for n in range(3)]
    consumer = PartitionedConsumer(
        redis, [handler], 1, Leases(redis, "trim-test"), _one, block_ms=100
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop, tick=0.1))
    try:
        await eventually(
            lambda: _ids(redis, STREAM),
            until=lambda ids: ids == [slow, *later],
            message="acknowledged entries before the slow one trimmed, the rest kept",
        )
        await redis.xack(STREAM, handler.group, slow)
        await eventually(
            lambda: _ids(redis, STREAM), until=lambda ids: ids == [], message="all trimmed"
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)
    assert handler.handled == ["first", "slow", *[f"later-{n}" for n in range(3)]]


async def test_the_command_queues_are_trimmed_once_their_commands_ran(
    services: Services, settings: Settings
) -> None:
    assert (await services.intake.submit(CreateProduct("TRIM-1", "Mug", 100), ADMIN)).status_code
    replies = [
        await services.intake.submit(RestockProduct("TRIM-1", 1), ADMIN, prefer_async=True)
        for _ in range(5)
    ]
    queues = [keys.commands(p) for p in range(settings.partitions)]
    assert sum([await services.write.xlen(q) for q in queues]) == 5

    async with running_workers(settings, ["commands"]):
        for reply in replies:
            assert (await final_status(services, reply.command_id)).status == "succeeded"

        async def queued() -> int:
            return sum([await services.write.xlen(q) for q in queues])

        await eventually(queued, until=lambda n: n == 0, message="the queues trimmed")


async def test_a_stream_that_is_not_there_trims_nothing(services: Services) -> None:
    assert await trim_consumed(services.write, STREAM) == 0
