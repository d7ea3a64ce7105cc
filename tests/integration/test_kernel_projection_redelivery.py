"""A projector killed between its write and its ack applies nothing twice on takeover."""

from __future__ import annotations

import msgspec

from app.config import Settings
from app.domain.orders import LineRequest, PlaceOrderRequest
from app.domain.products import CreateProduct, RenameProduct
from app.kernel import keys
from app.kernel.consumer import Entry, ensure_group, parse_entries
from app.kernel.partitions import partition_of
from app.kernel.projection import ProjectionHandler, group_name
from app.kernel.read_side import summed
from app.projections import keys as rm
from app.projections.command_log import CommandLogProjection
from app.projections.sales import SalesProjection
from app.services import Services
from tests.integration.conftest import ADMIN, ALICE, running_workers
from tests.support.kernel_catalog import pending, running_projections, stored_events
from tests.support.polling import eventually

CARD = "4242424242424242"


async def _pending_everywhere(services: Services, group: str, streams: list[str]) -> int:
    return sum([await pending(services.write, stream, group) for stream in streams])


async def test_a_new_owner_skips_and_acks_what_the_killed_owner_applied_but_never_acked(
    services: Services, settings: Settings
) -> None:
    """command_log counts with HINCRBY: the re-read pending entries are acked, not re-counted."""
    for index in range(6):
        reply = await services.intake.submit(CreateProduct(f"LOG-{index}", "Lamp", 500), ADMIN)
        assert reply.status_code == 200
    for sku in ("GONE-1", "GONE-2"):
        reply = await services.intake.submit(RenameProduct(sku, "Ghost"), ADMIN)
        assert reply.status_code == 409
    handler = ProjectionHandler(CommandLogProjection(), services.read)
    group = group_name("command_log")
    streams = [keys.journal(p) for p in range(settings.partitions)]
    # the "killed" projector: read as the partition's consumer, apply, and die before XACK
    for partition, stream in enumerate(streams):
        await ensure_group(services.write, stream, group)
        reply = await services.write.xreadgroup(group, f"p{partition}", {stream: ">"}, count=100)
        entries = parse_entries(partition, reply)
        if entries:
            await handler.handle(partition, entries)
    assert await _counts(services) == {
        "succeeded": "6",
        "rejected": "2",
        "CreateProduct:succeeded": "6",
        "RenameProduct:rejected": "2",
    }
    assert await _pending_everywhere(services, group, streams) == 8

    async with running_projections(settings, ("command_log",), owner="new-owner"):
        await eventually(
            lambda: _pending_everywhere(services, group, streams),
            until=lambda n: n == 0,
            message="pending entries acked by the new owner",
        )
        assert await _counts(services) == {
            "succeeded": "6",
            "rejected": "2",
            "CreateProduct:succeeded": "6",
            "RenameProduct:rejected": "2",
        }
        assert await _recent(services) == 8
        # and the new owner goes on with new entries
        reply = await services.intake.submit(CreateProduct("LOG-NEW", "Lamp", 500), ADMIN)
        assert reply.status_code == 200
        await eventually(
            lambda: _counts(services),
            until=lambda counts: counts["succeeded"] == "7",
            message="the next command counted",
        )
    assert await _recent(services) == 9


async def _counts(services: Services) -> dict[str, str]:
    """The command log's counts, every partition's added up."""
    (counts,) = await services.read_side.gather(
        lambda pipe, p: pipe.hgetall(rm.command_log_counts(p))
    )
    return {name: str(total) for name, total in summed(counts).items()}


async def _recent(services: Services) -> int:
    (lengths,) = await services.read_side.gather(
        lambda pipe, p: pipe.llen(rm.command_log_recent(p))
    )
    return sum(lengths)


async def _place_order(services: Services, settings: Settings) -> tuple[str, dict[str, str]]:
    """An order placed for real (intake → command worker); its OrderPlaced entry."""
    created = await services.intake.submit(CreateProduct("SALE-1", "Mug", 1500, 10), ADMIN)
    assert created.status_code == 200
    placed = await services.intake.submit(
        PlaceOrderRequest([LineRequest("SALE-1", 2)], CARD), ALICE
    )
    assert placed.status_code == 202
    async with running_workers(settings, ["commands"]):
        found = await eventually(
            lambda: stored_events(services.write, settings.partitions),
            until=lambda events: any(e.type == "OrderPlaced" for _, e in events),
            message="OrderPlaced committed",
        )
    entry_id, event = next((i, e) for i, e in found if e.type == "OrderPlaced")
    partition = partition_of(event.aggregate_id, settings.partitions)
    [(_, fields)] = await services.write.xrange(keys.events(partition), entry_id, entry_id)
    return event.aggregate_id, fields


async def test_a_redelivered_event_with_an_applied_version_is_skipped(
    services: Services, settings: Settings
) -> None:
    """The same OrderPlaced appended again (a new entry, the same aggregate version): the
    sales dashboard's HINCRBY counters do not move, the checkpoint does, no gap is noted."""
    order_id, fields = await _place_order(services, settings)
    partition = partition_of(order_id, settings.partitions)
    async with running_projections(settings, ("sales",)):
        await eventually(
            lambda: services.read.hget(rm.sales_by_status(partition), "placed"),
            until=lambda n: n == "1",
            message="order counted once",
        )
    duplicate = await services.write.xadd(keys.events(partition), fields)

    async with running_projections(settings, ("sales",)):
        await eventually(
            lambda: services.read.get(keys.checkpoint("sales", partition)),
            until=lambda c: c == duplicate,
            message="duplicate consumed",
        )
    assert await services.read.hgetall(rm.sales_by_status(partition)) == {"placed": "1"}
    assert await services.read.hget(rm.sales_totals(partition), "orders_placed") == "1"
    versions = keys.applied_versions("sales", partition)
    assert await services.read.hget(versions, f"order:{order_id}") == "1"
    assert await services.read.hgetall(keys.projection_health("sales", partition)) == {}


async def test_a_duplicate_in_the_same_batch_is_applied_once(services: Services) -> None:
    """One batch holding the same OrderPlaced twice: counted once, by the version check."""
    settings = services.settings
    order_id, fields = await _place_order(services, settings)
    partition = partition_of(order_id, settings.partitions)
    stream = keys.events(partition)
    copy = await services.write.xadd(stream, fields)
    entries = [Entry(i, partition, f) for i, f in await services.write.xrange(stream)]
    assert entries[-1].id == copy
    handler = ProjectionHandler(SalesProjection(), services.read)

    await handler.handle(partition, entries)

    assert await services.read.hgetall(rm.sales_by_status(partition)) == {"placed": "1"}
    assert await services.read.get(keys.checkpoint("sales", partition)) == copy


async def test_a_version_jump_is_recorded_as_a_gap(services: Services, settings: Settings) -> None:
    """An event two versions ahead of the last applied one: the catalog notes the gap."""
    created = await services.intake.submit(CreateProduct("GAP-1", "Lamp", 500, 3), ADMIN)
    assert created.status_code == 200
    partition = partition_of("GAP-1", settings.partitions)
    stream = keys.events(partition)
    [(_, fields)] = await services.write.xrange(stream)
    stored = msgspec.json.decode(fields["e"])
    jumped = {
        **stored,
        "type": "ProductRenamed",
        "version": 3,
        "data": {"type": "ProductRenamed", "sku": "GAP-1", "name": "Jumped"},
    }
    jump_id = await services.write.xadd(stream, {"e": msgspec.json.encode(jumped).decode()})

    async with running_projections(settings, ("catalog",)):
        health = await eventually(
            lambda: services.read.hgetall(keys.projection_health("catalog", partition)),
            until=lambda h: "gap" in h,
            message="gap recorded",
        )
    assert health["gap"] == f"product:GAP-1: after v1 came v3 ({jump_id})"
    assert float(health["gap_at"]) > 0
    versions = keys.applied_versions("catalog", partition)
    assert await services.read.hget(versions, "product:GAP-1") == "3"
