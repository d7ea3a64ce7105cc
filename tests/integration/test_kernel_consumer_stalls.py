"""A consumer that cannot make progress says so, and gives its partition up after a bound.

The status page shows the partition `stalled` with its last error, and the owner stops,
gives the lease back and (after a rest) takes it again, afresh — no process restart.
"""

from __future__ import annotations

import asyncio

from app.kernel.consumer import Entry, PartitionedConsumer
from app.kernel.heartbeat import HeartbeatPublisher
from app.kernel.leases import Leases
from app.queries.admin_status import Watched, admin_status
from app.services import Services
from tests.support.kernel_catalog import pending
from tests.support.polling import eventually

GROUP = "test.stuck"


class Gated:
    """Applies entries only once its gate is open; until then it hangs, as on a dead socket."""

    group = GROUP

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.applied: list[str] = []

    def stream(self, partition: int) -> str:
        return f"test:stuck:{partition}"

    async def handle(self, partition: int, entries: list[Entry]) -> None:
        await self.gate.wait()
        self.applied += [e.fields["n"] for e in entries]

    async def skip(self, partition: int, entry: Entry) -> None:
        raise AssertionError("nothing here fails")


async def _one() -> int:
    return 1


async def test_a_stuck_partition_is_reported_stalled_given_up_and_resumed(
    services: Services,
) -> None:
    redis = services.write
    handler = Gated()
    await redis.xadd(handler.stream(0), {"n": "1"})
    consumer = PartitionedConsumer(
        redis,
        [handler],
        1,
        Leases(redis, "stuck-test", ttl_ms=5000),
        _one,
        block_ms=100,
        stall_seconds=0.5,
        give_up_seconds=2.0,
    )
    heartbeat = HeartbeatPublisher(redis, "projector", "stuck-test")
    heartbeat.stalls = consumer.stalls
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop, tick=0.1))
    watched = [Watched("stuck", "projection", GROUP, "events")]
    try:
        stalls = await eventually(
            lambda: asyncio.sleep(0, consumer.stalls()), message="reported stalled"
        )
        assert [(s.group, s.partition) for s in stalls] == [(GROUP, 0)]
        await heartbeat.beat()
        status = await admin_status(redis, services.read, watched, 1)
        assert [c.status for c in status.projections] == ["stalled"]
        assert "no progress" in status.projections[0].last_error
        assert [(s.group, s.partition) for s in status.stalls] == [(GROUP, 0)]

        await eventually(
            lambda: asyncio.sleep(0, consumer.owned),
            until=lambda owned: owned == [],
            timeout=10,
            message="the stuck partition given up",
        )
        handler.gate.set()  # whatever held it is gone: the partition is taken again, afresh
        await eventually(
            lambda: asyncio.sleep(0, handler.applied),
            until=lambda applied: applied == ["1"],
            timeout=10,
            message="applied after the partition was taken again",
        )
        await eventually(lambda: pending(redis, handler.stream(0), GROUP), until=lambda n: n == 0)
        await eventually(lambda: asyncio.sleep(0, consumer.stalls()), until=lambda s: s == [])
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)
