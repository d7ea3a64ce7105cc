"""Zero-downtime rebuilds: a shadow catalog built from the streams while the live one serves.

The shadow follows the live projection, is compared with it at a cut (the projectors paused
by their leases for a moment), and swapped in with one MULTI: under live traffic, the diff
is empty and the catalog goes on from the swapped checkpoints without missing an event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from app.config import Settings
from app.domain.products import CreateProduct, RenameProduct, RestockProduct
from app.kernel import keys
from app.kernel.partitions import partition_of
from app.kernel.projection import group_name
from app.kernel.rebuild import ShadowRebuild
from app.kernel.rebuild_state import RebuildState, rebuild_states
from app.projections import keys as rm
from app.projections.catalog import CatalogProjection
from app.queries import catalog
from app.services import Services
from tests.integration.conftest import ADMIN, make_settings, running_workers
from tests.support.kernel_catalog import product_record
from tests.support.orders_helpers import pipeline_groups, wait_idle
from tests.support.polling import eventually

SKUS = [f"RB-{i:03d}" for i in range(40)]


@pytest.fixture
def settings(redis_url: str) -> Settings:
    """Short leases: after a cut the projectors wait for what was theirs to lapse."""
    return make_settings(redis_url, LEASE_MS="2000")


@contextlib.asynccontextmanager
async def live_traffic(services: Services) -> AsyncIterator[list[int]]:
    """Restocks and renames, one after another, until the block ends; yields the count."""
    sent = [0]
    stop = asyncio.Event()

    async def send() -> None:
        n = 0
        while not stop.is_set():
            sku = SKUS[n % len(SKUS)]
            command = RestockProduct(sku, 1) if n % 3 else RenameProduct(sku, f"Name {n}")
            reply = await services.intake.submit(command, ADMIN)
            assert reply.status_code == 200, reply
            sent[0] += 1
            n += 1

    task = asyncio.create_task(send())
    try:
        yield sent
    finally:
        stop.set()
        await task


def rebuild_of(services: Services, settings: Settings, **options: object) -> ShadowRebuild:
    return ShadowRebuild(
        services.write,
        services.read,
        CatalogProjection(),
        settings.partitions,
        owner="test-rebuild",
        lease_ms=settings.lease_ms,
        chunk=50,  # many small chunks: the shadow really has to follow the live projection
        **options,  # type: ignore[arg-type]
    )


async def _catalog_matches_the_write_model(services: Services) -> None:
    for sku in SKUS:
        _version, product = await product_record(services, sku)
        view = await catalog.get_product(services.read_side, sku)
        assert product is not None and view is not None
        assert (view.name, view.available) == (product.name, product.on_hand - product.reserved)


async def test_a_shadow_rebuild_under_live_traffic_swaps_with_a_zero_diff(
    services: Services, settings: Settings
) -> None:
    for sku in SKUS:
        reply = await services.intake.submit(CreateProduct(sku, f"Item {sku}", 500, 3), ADMIN)
        assert reply.status_code == 200
    seen: list[RebuildState] = []

    async def progress(state: RebuildState) -> None:
        seen.append(state)

    async with running_workers(settings, ["projector"]):
        async with live_traffic(services) as sent:
            await eventually(lambda: _sent(sent), until=lambda n: n >= 150, timeout=60)
            rebuild = rebuild_of(services, settings, on_progress=progress)
            await rebuild.start()
            try:
                await rebuild.follow()
                during = sent[0]
                diff = await rebuild.cut(swap=True)
            finally:
                await rebuild.close()
            await eventually(lambda: _sent(sent), until=lambda n: n >= during + 60, timeout=60)
        assert diff.same, diff
        assert diff.live_keys > len(SKUS)  # every product, the index, the applied versions
        await wait_idle(services, pipeline_groups(settings, ["projector"]))
        await _catalog_matches_the_write_model(services)

        again = rebuild_of(services, settings)
        await again.start()
        try:
            await again.follow()
            after = await again.cut(swap=False)  # compare only: the shadow stays for later
        finally:
            await again.close()
        assert after.same, after
    assert seen[0].phase == "building" and seen[-1].phase == "swapped" and seen[-1].done > 0
    (state,) = await rebuild_states(services.write, ["catalog"])
    assert state.phase == "ready" and state.diff == after
    assert state.done >= sent[0] and state.rate > 0


async def _sent(sent: list[int]) -> int:
    return sent[0]


async def test_a_rebuild_mends_a_corrupted_catalog_and_reports_what_differed(
    services: Services, settings: Settings
) -> None:
    for sku in SKUS[:5]:
        await services.intake.submit(CreateProduct(sku, f"Item {sku}", 500, 3), ADMIN)
    async with running_workers(settings, ["projector"]):
        for sku in SKUS[:5]:  # each partition projects on its own
            await eventually(
                lambda sku=sku: catalog.get_product(services.read_side, sku), message="projected"
            )
        broken = rm.product(partition_of(SKUS[2], settings.partitions), SKUS[2])
        stray = keys.read_model("catalog", 1, "stray")
        await services.read.hset(broken, "available", 999)
        await services.read.set(stray, "left over")

        rebuild = rebuild_of(services, settings)
        await rebuild.start()
        try:
            await rebuild.follow()
            diff = await rebuild.cut(swap=True)
        finally:
            await rebuild.close()
        assert (diff.differing, diff.only_live, diff.only_shadow) == (1, 1, 0), diff
        assert {d.key for d in diff.sample} == {broken, stray}
        assert "available: live '999', rebuilt '3'" in {d.detail for d in diff.sample}
        view = await catalog.get_product(services.read_side, SKUS[2])
        assert view is not None and view.available == 3
        assert not await services.read.exists(stray)
        assert not [k async for k in services.read.scan_iter(match="rebuild:*")]

        # the projector carries on from the swapped checkpoint
        await services.intake.submit(RestockProduct(SKUS[2], 4), ADMIN)
        await eventually(
            lambda: catalog.get_product(services.read_side, SKUS[2]),
            until=lambda v: v is not None and v.available == 7,
            message="projected after the swap",
        )


async def test_a_poison_event_holds_its_product_back_in_the_shadow_too(
    services: Services, settings: Settings
) -> None:
    """The live catalog parks a product behind an undecodable event; the rebuild holds the
    same product back at the same event, so the two agree, and the failure is reported."""
    for sku in SKUS[:3]:
        await services.intake.submit(CreateProduct(sku, f"Item {sku}", 500, 3), ADMIN)
    sku = SKUS[1]
    await services.write.xadd(
        keys.events(partition_of(sku, settings.partitions)),
        {"t": "ProductRenamed", "a": f"product:{sku}", "v": "2", "e": "{not json"},
    )
    await services.intake.submit(RestockProduct(sku, 2), ADMIN)
    await services.intake.submit(RestockProduct(SKUS[0], 2), ADMIN)
    async with running_workers(settings, ["projector"]):
        await eventually(
            lambda: services.write.xlen(keys.dead_letters(group_name("catalog"))),
            until=lambda n: n == 2,
            timeout=30,
            message="the poison and the restock behind it parked",
        )
        rebuild = rebuild_of(services, settings)
        await rebuild.start()
        try:
            await rebuild.follow()
            diff = await rebuild.cut(swap=False)
        finally:
            await rebuild.abandon()
            await rebuild.close()
    assert diff.same, diff
    assert rebuild.state.failed == 1 and f"product:{sku}" in rebuild.state.failures[0]
    assert rebuild.state.phase == "abandoned"
    assert not [k async for k in services.read.scan_iter(match="rebuild:*")]
