"""Decisions see what other processes wrote: a refusal is never based on an outdated state.

Each test uses two processes' worth of services: the test's own (as the web process would
be) and the workers' (as the process manager would be). One writes, the other then decides.
"""

from __future__ import annotations

from app.aggregates import PRODUCT
from app.config import Settings
from app.domain.orders import ShipOrder
from app.domain.products import ReserveStock, RestockProduct
from app.kernel.messages import SYSTEM
from app.services import Services, build_services
from tests.integration.conftest import ADMIN, ALICE, BOB, running_workers
from tests.support.orders_helpers import (
    create_products,
    load_order,
    load_product,
    order_id_of,
    place_order,
    wait_final,
    wait_order_status,
)


async def test_stock_restocked_by_another_process_can_be_bought(
    services: Services, settings: Settings
) -> None:
    """The last unit sells; an admin restocks (web process); the next order gets the new units
    instead of insufficient_stock."""
    await create_products(services, ADMIN, {"MUG-1": 1})
    async with running_workers(settings):
        first = await wait_final(services, await place_order(services, ALICE, {"MUG-1": 1}))
        assert first.status == "succeeded", first
        reply = await services.intake.submit(RestockProduct("MUG-1", 5), ADMIN)
        assert reply.status_code == 200, reply
        second = await wait_final(services, await place_order(services, BOB, {"MUG-1": 2}))
    assert (second.status, second.error) == ("succeeded", None), second
    product = await load_product(services, "MUG-1")
    assert (product.on_hand, product.sold) == (3, 3)  # 1 + 5 restocked - 3 sold


async def test_an_order_refused_shipping_too_early_ships_once_confirmed(
    services: Services, settings: Settings
) -> None:
    """An admin tries to ship an order still being placed (order_not_shippable); once the
    process manager confirmed it, the same admin's ShipOrder succeeds."""
    await create_products(services, ADMIN, {"MUG-1": 5})
    async with running_workers(settings, ["commands"], owner="early"):
        command_id = await place_order(services, ALICE, {"MUG-1": 1})
        order_id = await order_id_of(services, command_id)
        await wait_order_status(services, order_id, ["placed"])
        early = await services.intake.submit(ShipOrder(order_id), ADMIN)
        assert early.error is not None and early.error.code == "order_not_shippable"
        async with running_workers(settings, ["process"], owner="late"):
            assert (await wait_final(services, command_id)).status == "succeeded"
    again = await services.intake.submit(ShipOrder(order_id), ADMIN)
    assert (again.status_code, again.error) == (200, None), again
    assert (await load_order(services, order_id)).status == "shipped"


async def test_an_aggregate_read_ahead_then_changed_elsewhere_is_decided_on_its_new_state(
    services: Services, settings: Settings
) -> None:
    """The process manager reads an order ahead of its next step (Fulfilment._reserve); a
    copy another process outdates meanwhile costs a reread, never a wrong refusal."""
    await create_products(services, ADMIN, {"MUG-1": 1})
    manager = build_services(settings)  # the process manager's process
    try:
        await manager.bus.warm(PRODUCT, "MUG-1")  # 1 on hand, as read ahead
        reply = await services.intake.submit(RestockProduct("MUG-1", 5), ADMIN)
        assert reply.status_code == 200, reply
        hold = manager.bus.envelope(ReserveStock("MUG-1", "o-1", 3), SYSTEM, internal=True)
        outcome = await manager.bus.execute(hold)
    finally:
        await manager.close()
    assert (outcome.status, outcome.error) == ("succeeded", None), outcome
    product = await load_product(services, "MUG-1")
    assert (product.on_hand, product.reserved) == (6, 3)
