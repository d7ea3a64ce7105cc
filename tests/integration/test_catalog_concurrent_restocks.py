"""Concurrent commands on one product never lose an update, whoever runs them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec

from app.config import Settings
from app.domain.products import CreateProduct, RestockProduct
from app.kernel import keys
from app.kernel.bus import CommandBus
from app.kernel.command_worker import CommandQueue
from app.kernel.commit import CommitRequest, CommitResult, CommitStore
from app.kernel.consumer import PartitionedConsumer
from app.kernel.intake import Reply
from app.kernel.leases import Leases
from app.kernel.partitions import partition_of
from app.queries import catalog
from app.services import Services, build_services
from tests.integration.conftest import ADMIN, running_workers
from tests.support.kernel_catalog import (
    dedup_record,
    final_status,
    product_record,
    running_projections,
)
from tests.support.polling import eventually

SKU = "MUG-RACE"
INITIAL = 40
SYNC_PER_PROCESS = 100
ASYNC = 100
TOTAL = 2 * SYNC_PER_PROCESS + ASYNC


async def test_300_concurrent_restocks_from_two_web_processes_and_two_workers_lose_nothing(
    services: Services, settings: Settings
) -> None:
    """200 sync restocks from two Services and 100 async ones run by two command workers:
    every restock that succeeded counts exactly once (on_hand, version, one event each), any
    other was refused as a concurrency conflict and left no trace, and the projected catalog
    ends at the write model's figure."""
    created = await services.intake.submit(CreateProduct(SKU, "Mug", 1200, INITIAL), ADMIN)
    assert created.status_code == 200
    second_web = build_services(settings)
    async_web = build_services(settings)
    try:
        async with (
            running_workers(settings, ["commands"], owner="w1"),
            running_workers(settings, ["commands"], owner="w2"),
        ):
            queued_replies = asyncio.gather(
                *(
                    async_web.intake.submit(RestockProduct(SKU, 1), ADMIN, prefer_async=True)
                    for _ in range(ASYNC)
                )
            )
            sync_replies = asyncio.gather(
                *(
                    web.intake.submit(RestockProduct(SKU, 1), ADMIN)
                    for web in (services, second_web)
                    for _ in range(SYNC_PER_PROCESS)
                )
            )
            queued: list[Reply] = await queued_replies
            done: list[Reply] = await sync_replies
            assert {r.status_code for r in queued} == {202}
            finals = [await final_status(services, r.command_id) for r in queued]
    finally:
        await second_web.close()
        await async_web.close()

    outcomes = {r.command_id: (r.status, r.error.code if r.error else None) for r in done}
    outcomes |= {s.command_id: (s.status, s.error.code if s.error else None) for s in finals}
    assert len(outcomes) == TOTAL
    succeeded = {cid for cid, (status, _) in outcomes.items() if status == "succeeded"}
    refused = {cid: outcome for cid, outcome in outcomes.items() if cid not in succeeded}
    assert set(refused.values()) <= {("failed", "concurrency_conflict")}, refused
    assert len(succeeded) >= 0.9 * TOTAL, f"{len(refused)} of {TOTAL} refused"
    # an accepted (queued) command is never lost to contention; only a waiting request may be
    assert {s.command_id for s in finals} <= succeeded

    version, product = await product_record(services, SKU)
    assert product is not None
    assert (product.on_hand, version) == (INITIAL + len(succeeded), 1 + len(succeeded))
    partition = partition_of(SKU, settings.partitions)
    events = [
        msgspec.json.decode(fields["e"])
        for _, fields in await services.write.xrange(keys.events(partition))
    ]
    by_command = [e["command_id"] for e in events if e["type"] == "ProductRestocked"]
    assert sorted(by_command) == sorted(succeeded)
    assert [e["version"] for e in events] == list(range(1, version + 1))
    for command_id in refused:
        assert (await dedup_record(services, command_id))["status"] == "failed"

    async with running_projections(settings, ("catalog",)):
        view = await eventually(
            lambda: catalog.get_product(services.read_side, SKU),
            until=lambda v: v is not None and v.available >= product.on_hand,
            message="catalog caught up",
        )
    assert view is not None and view.available == product.on_hand


async def _one() -> int:
    return 1


class _BusyAggregate(CommitStore):
    """The real commit, but before each attempt of `target` another process restocks first."""

    def __init__(self, services: Services, rival: Services, times: int) -> None:
        super().__init__(services.write, services.settings.status_ttl_seconds)
        self._rival = rival
        self.target = ""
        self.remaining = times

    async def commit_many(
        self, requests: Sequence[CommitRequest]
    ) -> list[CommitResult | Exception]:
        if any(r.command_id == self.target for r in requests) and self.remaining > 0:
            self.remaining -= 1
            reply = await self._rival.intake.submit(RestockProduct(SKU, 1), ADMIN)
            assert reply.status_code == 200
        return await super().commit_many(requests)


async def test_an_accepted_restock_is_applied_even_if_its_product_changes_20_times_under_it(
    services: Services, settings: Settings
) -> None:
    """A command worker's restock loses the race 20 times in a row to another process's
    restocks: the accepted command still ends `succeeded`, applied once, after the others."""
    interferences = 20
    created = await services.intake.submit(CreateProduct(SKU, "Mug", 1200, INITIAL), ADMIN)
    assert created.status_code == 200
    worker_side = build_services(settings)
    rival = build_services(settings)
    store = _BusyAggregate(worker_side, rival, interferences)
    bus = CommandBus(worker_side.write, worker_side.bus.registry, settings.partitions, store)
    queue = CommandQueue(worker_side.write, bus, worker_side.statuses)
    worker = PartitionedConsumer(
        worker_side.write,
        [queue],
        settings.partitions,
        Leases(worker_side.write, "busy-worker"),
        _one,
        block_ms=200,
    )
    stop = asyncio.Event()
    try:
        accepted = await services.intake.submit(RestockProduct(SKU, 5), ADMIN, prefer_async=True)
        store.target = accepted.command_id
        running = asyncio.create_task(worker.run(stop, tick=0.2))
        status = await final_status(services, accepted.command_id)
        stop.set()
        await asyncio.wait_for(running, timeout=20)
    finally:
        stop.set()
        await worker_side.close()
        await rival.close()

    assert (status.status, status.error) == ("succeeded", None)
    assert store.remaining == 0
    version, product = await product_record(services, SKU)
    assert product is not None and product.on_hand == INITIAL + interferences + 5
    assert version == 1 + interferences + 1


async def test_a_burst_larger_than_the_connection_pool_is_served_not_refused(
    services: Services,
) -> None:
    """250 products created at once through one web process (pool of 200): all created."""
    replies = await asyncio.gather(
        *(
            services.intake.submit(CreateProduct(f"BURST-{i:03d}", "Mug", 100, 1), ADMIN)
            for i in range(250)
        ),
        return_exceptions=True,
    )

    refused = [type(r).__name__ for r in replies if not isinstance(r, Reply)]
    assert refused == []
    assert {r.status for r in replies if isinstance(r, Reply)} == {"succeeded"}
