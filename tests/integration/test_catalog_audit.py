"""The projection audit: a sample of aggregates re-derived from their events and compared
with each read model. A corrupted key is reported with its key and what differs; once the
key is right again (here: written back), a later round clears it."""

from __future__ import annotations

from typing import Any

from app.config import Settings
from app.domain.orders import LineRequest, PlaceOrderRequest
from app.domain.products import CreateProduct, RestockProduct
from app.kernel import keys
from app.kernel.audit import AuditReport, ProjectionAudit
from app.kernel.partitions import partition_of
from app.kernel.projection import Projection
from app.projections import keys as rm
from app.projections.registry import build
from app.services import Services
from tests.integration.conftest import ADMIN, ALICE, running_workers
from tests.support.orders_helpers import pipeline_groups, wait_all_final, wait_idle

SKUS = [f"AU-{i:02d}" for i in range(12)]


def audit(services: Services, projection: Projection[Any]) -> ProjectionAudit:
    return ProjectionAudit(services.write, services.read, projection, sample=100)


async def every_partition(services: Services, projection: Projection[Any]) -> AuditReport:
    made = audit(services, projection)
    report = None
    for partition in range(services.settings.partitions):
        report = await made.round(partition)
    assert report is not None
    return report


async def test_a_corrupted_catalog_key_is_reported_then_cleared(
    services: Services, settings: Settings
) -> None:
    for sku in SKUS:
        await services.intake.submit(CreateProduct(sku, f"Item {sku}", 500, 3), ADMIN)
        await services.intake.submit(RestockProduct(sku, 2), ADMIN)
    (catalog,) = build(("catalog",), settings)
    async with running_workers(settings, ["projector"]):
        await wait_idle(services, pipeline_groups(settings, ["projector"]))
        clean = await every_partition(services, catalog)
        assert clean.mismatches == [] and clean.checked == len(SKUS), clean

        broken = rm.product(partition_of(SKUS[3], settings.partitions), SKUS[3])
        index = rm.catalog_index(partition_of(SKUS[5], settings.partitions))
        await services.read.hset(broken, "available", 999)
        await services.read.zadd(index, {SKUS[5]: 7})
        report = await every_partition(services, catalog)
        found = {(m.key, m.aggregate, m.detail) for m in report.mismatches}
        assert found == {
            (broken, f"product:{SKUS[3]}", "available: read model '999', events say '5'"),
            (
                index,
                f"product:{SKUS[5]}",
                f"{SKUS[5]}: read model 7.0, events say 0.0",
            ),
        }, found

        await services.read.hset(broken, "available", 5)
        await services.read.zadd(index, {SKUS[5]: 0})
        partition = partition_of(SKUS[3], settings.partitions)
        after = await audit(services, catalog).round(partition)
        assert broken not in {m.key for m in after.mismatches}
        assert after.rounds == report.rounds + 1


async def test_orders_and_timelines_are_audited_too(services: Services, settings: Settings) -> None:
    await services.intake.submit(CreateProduct("AU-ORD", "Thing", 500, 10), ADMIN)
    placed = [
        (
            await services.intake.submit(
                PlaceOrderRequest([LineRequest("AU-ORD", 1)], "4242424242424242"), ALICE
            )
        ).command_id
        for _ in range(3)
    ]
    orders, timeline = build(("orders", "timeline"), settings)
    async with running_workers(settings, ["commands", "projector", "process"]):
        await wait_all_final(services, placed)
        await wait_idle(services, pipeline_groups(settings, ["projector", "process"]))
        assert (await every_partition(services, orders)).mismatches == []
        assert (await every_partition(services, timeline)).mismatches == []

        order_keys = [k async for k in services.read.scan_iter(match="rm:orders:*:order:*")]
        await services.read.hset(order_keys[0], "status", "shipped")
        timelines = [k async for k in services.read.scan_iter(match="rm:timeline:*:order:*")]
        await services.read.rpush(timelines[0], '{"status":"refunded","at":1.0}')
        assert {m.key for m in (await every_partition(services, orders)).mismatches} == {
            order_keys[0]
        }
        (wrong,) = (await every_partition(services, timeline)).mismatches
        assert wrong.key == timelines[0] and "list of 5 in the read model, 4 from" in wrong.detail


async def test_a_parked_product_is_skipped_not_reported(
    services: Services, settings: Settings
) -> None:
    """An aggregate held back behind a dead letter is what the console is for: the audit
    leaves it out rather than report the events it has not applied yet."""
    await services.intake.submit(CreateProduct("AU-PARK", "Mug", 500, 3), ADMIN)
    await services.write.xadd(
        keys.events(partition_of("AU-PARK", settings.partitions)),
        {"t": "ProductRenamed", "a": "product:AU-PARK", "v": "2", "e": "{not json"},
    )
    await services.intake.submit(RestockProduct("AU-PARK", 1), ADMIN)
    (catalog,) = build(("catalog",), settings)
    async with running_workers(settings, ["projector"]):
        await wait_idle(services, pipeline_groups(settings, ["projector"]))
        report = await every_partition(services, catalog)
    assert report.mismatches == [] and report.checked == 0 and report.skipped == 1, report
