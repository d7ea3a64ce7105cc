"""A paused consumer group reads nothing, keeps its lease and is not stalled; resumed, it goes
on where it stopped. The pause is in Redis, shown on the status page and in /readyz."""

from __future__ import annotations

import asyncio

from app.kernel import pauses
from app.kernel.consumer import Entry, PartitionedConsumer
from app.kernel.leases import Leases
from app.queries.admin_status import Watched, admin_status
from app.services import Services
from tests.support.kernel_catalog import pending
from tests.support.polling import eventually

STREAM = "test:pause:0"


class Recording:
    def __init__(self, group: str) -> None:
        self.group = group
        self.applied: list[str] = []

    def stream(self, partition: int) -> str:
        return STREAM

    async def handle(self, partition: int, entries: list[Entry]) -> None:
        self.applied += [e.fields["n"] for e in entries]

    async def skip(self, partition: int, entry: Entry) -> None:
        raise AssertionError("nothing here fails")


async def _one() -> int:
    return 1


async def test_a_paused_group_reads_nothing_keeps_its_lease_and_resumes(
    services: Services,
) -> None:
    redis = services.write
    held, witness = Recording("test.paused"), Recording("test.witness")
    await pauses.pause(redis, held.group, "admin", "looking at a poison event")
    consumer = PartitionedConsumer(
        redis,
        [held, witness],
        1,
        Leases(redis, "pause-test", ttl_ms=5000),
        _one,
        block_ms=50,
        stall_seconds=0.3,
        give_up_seconds=1.0,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop, tick=0.05))
    watched = [Watched("held", "projection", held.group, "events")]
    try:
        for n in ("1", "2"):
            await redis.xadd(STREAM, {"n": n})
        # the same loop machinery, unpaused, reads both: the paused group read neither
        await eventually(lambda: asyncio.sleep(0, witness.applied), until=lambda a: a == ["1", "2"])
        assert held.applied == []
        assert sorted(consumer.owned) == sorted([(held.group, 0), (witness.group, 0)])
        await eventually(lambda: pending(redis, STREAM, witness.group), until=lambda n: n == 0)
        assert consumer.stalls() == []
        status = await admin_status(redis, services.read, watched, 1)
        (shown,) = status.projections
        assert shown.status == "paused" and shown.paused is not None
        assert (shown.paused.by, shown.paused.reason) == ("admin", "looking at a poison event")

        assert await pauses.resume(redis, held.group)
        await eventually(lambda: asyncio.sleep(0, held.applied), until=lambda a: a == ["1", "2"])
        await eventually(lambda: pending(redis, STREAM, held.group), until=lambda n: n == 0)
        status = await admin_status(redis, services.read, watched, 1)
        assert status.projections[0].paused is None
        assert status.projections[0].status != "paused"
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)
        await pauses.resume(redis, held.group)
