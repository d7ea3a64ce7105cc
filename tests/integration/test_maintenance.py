"""Operator tools: rebuilding a projection from its streams, replaying dead letters."""

from __future__ import annotations

import msgspec
import pytest

from app.config import Settings
from app.domain.events import event_decoder
from app.domain.products import CreateProduct, RenameProduct, RestockProduct
from app.kernel import keys
from app.kernel.consumer import DeadLetter
from app.kernel.leases import Leases
from app.kernel.maintenance import ProjectionBusy, rebuild_projection, replay_dead_letters
from app.kernel.projection import group_name
from app.processes.fulfilment import GROUP, Fulfilment
from app.projections.catalog import CatalogProjection
from app.queries import catalog
from app.services import Services
from tests.integration.conftest import ADMIN, running_workers
from tests.support.polling import eventually


async def _catalog(services: Services) -> list[catalog.ProductView]:
    products, _ = await catalog.list_products(services.read, limit=1000)
    return products


async def test_a_rebuilt_catalog_equals_the_one_it_replaced(
    services: Services, settings: Settings
) -> None:
    """Forget the read model, replay the events: the same catalog comes back."""
    for i in range(30):
        await services.intake.submit(CreateProduct(f"RB-{i:03d}", f"Item {i}", 100 + i, i), ADMIN)
    for i in range(0, 30, 3):
        await services.intake.submit(RestockProduct(f"RB-{i:03d}", 5), ADMIN)
        await services.intake.submit(RenameProduct(f"RB-{i:03d}", f"Renamed {i}"), ADMIN)
    async with running_workers(settings, ["projector"]):
        before = await eventually(
            lambda: _catalog(services),
            until=lambda p: (
                len(p) == 30
                and all(x.name.startswith("Renamed") for x in p if int(x.sku[3:]) % 3 == 0)
            ),
        )
    projection = CatalogProjection(event_decoder())
    deleted = await rebuild_projection(
        services.write, services.read, "catalog", settings.partitions, projection.stream
    )
    assert deleted > 30
    assert await _catalog(services) == []
    async with running_workers(settings, ["projector"]):
        after = await eventually(lambda: _catalog(services), until=lambda p: p == before)
    assert after == before


async def test_a_rebuild_refuses_while_a_projector_owns_a_partition(
    services: Services, settings: Settings
) -> None:
    await Leases(services.write, "someone").acquire(group_name("catalog"), 2)
    projection = CatalogProjection(event_decoder())
    with pytest.raises(ProjectionBusy):
        await rebuild_projection(
            services.write, services.read, "catalog", settings.partitions, projection.stream
        )


async def test_a_dead_lettered_order_event_is_replayed_to_completion(
    services: Services, settings: Settings
) -> None:
    """An OrderPlaced given up on (e.g. during an outage) finishes when replayed."""
    from app.domain.orders import LineRequest, PlaceOrderRequest
    from app.kernel.partitions import partition_of_command
    from tests.integration.conftest import ALICE

    await services.intake.submit(CreateProduct("DL-1", "Thing", 500, 3), ADMIN)
    reply = await services.intake.submit(
        PlaceOrderRequest([LineRequest("DL-1", 1)], "4242424242424242"), ALICE
    )
    partition = partition_of_command(reply.command_id, settings.partitions)
    assert partition is not None
    async with running_workers(settings, ["commands"]):
        await eventually(
            lambda: services.statuses.get(partition, reply.command_id),
            until=lambda s: s is not None and s.view.position is not None,
        )
    stream = keys.events(partition)
    entry_id, fields = next(
        (i, f) for i, f in await services.write.xrange(stream) if '"OrderPlaced"' in f["e"]
    )
    letter = DeadLetter(
        group=GROUP, stream=stream, entry_id=entry_id, fields=fields, error="outage", at=0.0
    )
    await services.write.xadd(keys.dead_letters(GROUP), {"e": msgspec.json.encode(letter)})
    handler = Fulfilment(services.bus, services.gateway)
    assert await replay_dead_letters(services.write, handler, settings.partitions) == 1
    assert await services.write.xlen(keys.dead_letters(GROUP)) == 0
    stored = await services.statuses.get(partition, reply.command_id)
    assert stored is not None and stored.view.steps[-1].name == "succeeded"
