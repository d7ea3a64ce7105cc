"""Orders of one partition are fulfilled concurrently: a slow charge does not hold others up."""

from __future__ import annotations

from app.services import Services, build_services
from tests.integration.conftest import ADMIN, ALICE, BOB, make_settings, running_workers
from tests.support.orders_helpers import (
    create_products,
    domain_events,
    order_id_of,
    payload,
    place_order,
    wait_all_final,
    wait_order_status,
)


async def test_a_second_order_is_reserved_while_the_first_one_is_being_charged(
    redis_url: str,
) -> None:
    """One partition, a gateway taking 3-9 s per charge: order B, placed while order A waits on
    its charge, has its stock reserved before A's payment comes back (the process manager's
    docstring: "Orders of one partition are handled concurrently")."""
    settings = make_settings(
        redis_url, PARTITIONS="1", PAYMENT_LATENCY_MS="3000", PAYMENT_TIMEOUT_MS="60000"
    )
    services = build_services(settings)
    try:
        await a_slow_charge_holds_no_one_up(services)
    finally:
        await services.close()


async def a_slow_charge_holds_no_one_up(services: Services) -> None:
    settings = services.settings
    await create_products(services, ADMIN, {"MUG-1": 10})
    async with running_workers(settings):
        first = await place_order(services, ALICE, {"MUG-1": 1})
        first_order = await order_id_of(services, first)
        await wait_order_status(services, first_order, ["reserved"])
        second = await place_order(services, BOB, {"MUG-1": 1})
        second_order = await order_id_of(services, second)
        await wait_all_final(services, [first, second], within=60)

    sequence = [
        (e.type, payload(e)["order_id"])
        for e in await domain_events(services.write, settings.partitions)
        if e.type in ("OrderStockReserved", "OrderPaid")
    ]
    assert sequence.index(("OrderStockReserved", second_order)) < sequence.index(
        ("OrderPaid", first_order)
    ), sequence
