"""Payment failures compensate: a declined or unanswered charge releases the order's stock."""

from __future__ import annotations

from collections.abc import Mapping

from app.config import Settings
from app.queries import catalog, notifications, orders
from app.services import Services, build_services
from tests.integration.conftest import ADMIN, ALICE, make_settings, running_workers
from tests.support.orders_helpers import (
    AFTER_RECORDING,
    ANSWER,
    BEFORE_RECORDING,
    DECLINED_CARD,
    FAIL,
    ScriptedRandom,
    captures,
    command_status,
    create_products,
    domain_events,
    integration_events,
    load_order,
    load_product,
    order_id_of,
    order_ids,
    payload,
    pipeline_groups,
    place_order,
    refunds,
    running_fulfilment,
    wait_all_final,
    wait_final,
    wait_idle,
)

STOCK = {"MUG-1": 5, "TEE-1": 3}


async def assert_stock_untouched(services: Services, stock: Mapping[str, int]) -> None:
    """Write model and catalog both show every product exactly as it was created."""
    for sku, on_hand in stock.items():
        product = await load_product(services, sku)
        assert (product.on_hand, product.reserved, product.sold) == (on_hand, 0, 0), product
        assert product.reservations == {}
        shown = await catalog.get_product(services.read_side, sku)
        assert shown is not None and (shown.available, shown.sold) == (on_hand, 0), shown


async def test_a_declined_card_rejects_the_order_and_releases_its_stock(
    services: Services, settings: Settings
) -> None:
    """4000000000000002: stock reserved, charge declined, every line released, order rejected
    with payment_declined, PlaceOrder failed with that code, no money taken; the customer is
    told (OrderRejected, to the inbox)."""
    await create_products(services, ADMIN, STOCK)
    async with running_workers(settings):
        command_id = await place_order(services, ALICE, {"MUG-1": 2, "TEE-1": 3}, DECLINED_CARD)
        status = await wait_final(services, command_id)
        order_id = await order_id_of(services, command_id)
        await wait_idle(services, pipeline_groups(settings))

    assert status.status == "failed" and status.error is not None, status
    assert (status.error.code, status.error.status) == ("payment_declined", 409)
    assert [s.name for s in status.steps] == ["accepted", "processing", "stock_reserved", "failed"]

    order = await load_order(services, order_id)
    assert (order.status, order.reason) == ("rejected", "payment_declined")
    assert order.card_last4 == "0002"
    await assert_stock_untouched(services, STOCK)

    stock_events = sorted(
        (e.type, payload(e)["sku"], payload(e)["quantity"])
        for e in await domain_events(services.write, settings.partitions)
        if e.aggregate == "product" and payload(e).get("order_id") == order_id
    )
    assert stock_events == [
        ("StockReleased", "MUG-1", 2),
        ("StockReleased", "TEE-1", 3),
        ("StockReserved", "MUG-1", 2),
        ("StockReserved", "TEE-1", 3),
    ]
    assert (await captures(services.write)).get(f"charge:{order_id}", 0) == 0

    view = await orders.get_order(services.read_side, order_id)
    assert view is not None and (view.status, view.reason) == ("rejected", "payment_declined")
    assert [s.status for s in view.timeline] == ["placed", "reserved", "rejected"]
    published = await integration_events(services.write, settings.partitions)
    assert [(e["type"], e["order_id"], e["reason"]) for e in published] == [
        ("OrderRejected", order_id, "payment_declined")
    ]
    inbox = await notifications.inbox(services.read_side, "alice")
    assert inbox.unread == 1
    assert [n.text for n in inbox.items] == [
        f"Order …{order_id[-8:]} was declined: the card was declined. Your cart is kept."
    ]


async def test_an_unanswering_gateway_rejects_orders_with_payment_unavailable(
    redis_url: str,
) -> None:
    """PAYMENT_FAILURE_RATE=1.0: no charge ever answers, so every order ends rejected with
    payment_unavailable, its PlaceOrder failed with that code, and its stock released."""
    settings = make_settings(
        redis_url, PAYMENT_FAILURE_RATE="1.0", PAYMENT_TIMEOUT_MS="200", PAYMENT_RETRIES="1"
    )
    services = build_services(settings)
    try:
        await create_products(services, ADMIN, {"MUG-1": 40})
        kinds = ["commands", "projector", "process"]
        async with running_workers(settings, kinds):
            command_ids = [await place_order(services, ALICE, {"MUG-1": 2}) for _ in range(3)]
            await wait_all_final(services, command_ids, within=60)
            await wait_idle(services, pipeline_groups(settings, kinds))
        ids = await order_ids(services)
        outcomes = []
        for command_id in command_ids:
            view = await command_status(services, command_id)
            order = await load_order(services, ids[command_id])
            code = view.error.code if view.error else None
            outcomes.append((view.status, code, order.status, order.reason))
        unavailable = ("failed", "payment_unavailable", "rejected", "payment_unavailable")
        assert outcomes == [unavailable] * 3
        await assert_stock_untouched(services, {"MUG-1": 40})
    finally:
        await services.close()


async def test_a_charge_taken_before_the_gateway_went_silent_is_given_back(
    services: Services, redis_url: str
) -> None:
    """The gateway records the charge, its answer is lost, then it answers nothing more: the
    order is rejected with payment_unavailable and the money it took is refunded."""
    settings = make_settings(redis_url, PAYMENT_FAILURE_RATE="0.5", PAYMENT_TIMEOUT_MS="200")
    await create_products(services, ADMIN, {"MUG-1": 5})
    lost_then_down = ScriptedRandom(
        [
            FAIL,
            AFTER_RECORDING,
            FAIL,
            BEFORE_RECORDING,
            FAIL,
            BEFORE_RECORDING,
            FAIL,
            BEFORE_RECORDING,
        ],  # the charge's four attempts; every call after them answers
        after=ANSWER,
    )
    async with (
        running_workers(settings, ["commands"]),
        running_fulfilment(settings, lost_then_down),
    ):
        command_id = await place_order(services, ALICE, {"MUG-1": 2})
        status = await wait_final(services, command_id)
        order_id = await order_id_of(services, command_id)
        await wait_idle(services, pipeline_groups(settings, ["commands", "process"]))

    assert status.error is not None and status.error.code == "payment_unavailable", status
    order = await load_order(services, order_id)
    assert (order.status, order.reason) == ("rejected", "payment_unavailable")
    product = await load_product(services, "MUG-1")
    assert (product.on_hand, product.reserved, product.sold) == (5, 0, 0)
    assert (await captures(services.write)).get(f"charge:{order_id}") == 1  # money was taken
    given_back = [key for key in await refunds(services.write) if order_id in key]
    assert len(given_back) == 1, "the charge is given back, once"
    refunded = [
        e
        for e in await domain_events(services.write, settings.partitions)
        if e.type == "OrderRefunded" and payload(e)["order_id"] == order_id
    ]
    assert len(refunded) == 1, "and the order records its refund"
