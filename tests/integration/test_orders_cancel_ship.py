"""CancelOrder and ShipOrder: stock comes back, money is refunded, rules and roles hold."""

from __future__ import annotations

from typing import Any

import msgspec

from app.config import Settings
from app.domain.orders import CancelOrder, ShipOrder
from app.kernel.errors import ProblemError
from app.kernel.intake import Reply
from app.kernel.messages import Actor, Problem
from app.queries import catalog, notifications, orders
from app.services import Services
from tests.integration.conftest import ADMIN, ALICE, BOB, make_settings, running_workers
from tests.support.orders_helpers import (
    DECLINED_CARD,
    captures,
    command_status,
    create_products,
    domain_events,
    integration_events,
    load_order,
    load_product,
    order_id_of,
    payload,
    pipeline_groups,
    place_order,
    refunds,
    wait_final,
    wait_idle,
    wait_order_status,
)
from tests.support.polling import eventually


async def confirmed_order(services: Services, actor: Actor, quantities: dict[str, int]) -> str:
    """Place an order and wait until it is confirmed: its order id."""
    command_id = await place_order(services, actor, quantities)
    status = await wait_final(services, command_id)
    assert status.status == "succeeded", status
    return await order_id_of(services, command_id)


async def submit(services: Services, command: msgspec.Struct, actor: Actor) -> Reply | Problem:
    """The reply of a sync command, or the problem it was refused with at the door."""
    try:
        return await services.intake.submit(command, actor)
    except ProblemError as exc:
        return exc.to_problem()


def refused(outcome: Reply | Problem) -> tuple[int, str]:
    if isinstance(outcome, Problem):
        return outcome.status, outcome.code
    assert outcome.error is not None, outcome
    return outcome.status_code, outcome.error.code


def succeeded(outcome: Reply | Problem) -> bool:
    return isinstance(outcome, Reply) and (outcome.status_code, outcome.status) == (
        200,
        "succeeded",
    )


async def public_events(services: Services, order_id: str) -> list[dict[str, Any]]:
    found = await integration_events(services.write, services.settings.partitions)
    return [e for e in found if e["order_id"] == order_id]


async def test_the_owner_cancels_a_confirmed_order_and_gets_stock_and_money_back(
    services: Services, settings: Settings
) -> None:
    """Cancel after confirmation: the sold units go back on the shelf, the charge is refunded
    once, read models show cancelled + refunded, OrderCancelled is published and notified."""
    await create_products(services, ADMIN, {"MUG-1": 10, "TEE-1": 4})
    async with running_workers(settings):
        order_id = await confirmed_order(services, ALICE, {"MUG-1": 3, "TEE-1": 1})
        await wait_idle(services, pipeline_groups(settings))
        assert (await load_product(services, "MUG-1")).sold == 3
        charge_id = (await load_order(services, order_id)).payment_ref

        reply = await submit(services, CancelOrder(order_id, "changed my mind"), ALICE)
        assert succeeded(reply), reply
        await wait_idle(services, pipeline_groups(settings))

    order = await load_order(services, order_id)
    assert (order.status, order.reason) == ("cancelled", "changed my mind")
    for sku, on_hand in (("MUG-1", 10), ("TEE-1", 4)):
        product = await load_product(services, sku)
        assert (product.on_hand, product.reserved, product.sold) == (on_hand, 0, 0)
        assert product.reservations == {}
        shown = await catalog.get_product(services.read_side, sku)
        assert shown is not None and (shown.available, shown.sold) == (on_hand, 0)
    returned = sorted(
        (payload(e)["sku"], payload(e)["quantity"])
        for e in await domain_events(services.write, settings.partitions)
        if e.type == "StockReturned"
    )
    assert returned == [("MUG-1", 3), ("TEE-1", 1)]

    assert (await captures(services.write))[f"charge:{order_id}"] == 1
    assert (await refunds(services.write)) == {f"refund:{order_id}": charge_id}

    view = await orders.get_order(services.read_side, order_id)
    assert view is not None and (view.status, view.refunded) == ("cancelled", True)
    assert [s.status for s in view.timeline] == [
        "placed",
        "reserved",
        "paid",
        "confirmed",
        "cancelled",
        "refunded",
    ]
    assert "Cancelled by alice: changed my mind" in [s.detail for s in view.timeline]

    published = await public_events(services, order_id)
    assert [e["type"] for e in published] == ["OrderConfirmed", "OrderCancelled"]
    cancelled = published[1]
    assert cancelled["schema_version"] == 1 and cancelled["event_id"] == f"{order_id}:cancelled"
    assert (cancelled["customer"], cancelled["reason"], cancelled["refunded"]) == (
        "alice",
        "changed my mind",
        True,
    )
    inbox = await notifications.inbox(services.read_side, "alice")
    assert inbox.unread == 2 and [n.order_id for n in inbox.items] == [order_id, order_id]
    assert "cancelled" in inbox.items[0].text and "refunded" in inbox.items[0].text


async def test_cancelling_while_the_charge_is_in_flight_fails_the_order_and_refunds(
    redis_url: str, services: Services
) -> None:
    """Cancel after the gateway took the money but before the order was marked paid:
    PlaceOrder ends failed with order_cancelled, the reservation is released, and the charge
    that lands on a cancelled order is refunded."""
    settings = make_settings(redis_url, PAYMENT_LATENCY_MS="3000", PAYMENT_TIMEOUT_MS="30000")
    await create_products(services, ADMIN, {"MUG-1": 10})
    async with running_workers(settings):
        command_id = await place_order(services, ALICE, {"MUG-1": 4})
        order_id = await order_id_of(services, command_id)
        # the gateway records the charge half-way through a call of 3-9 s
        await eventually(
            lambda: captures(services.write),
            until=lambda c: f"charge:{order_id}" in c,
            timeout=30,
            message="charge recorded",
        )
        reply = await submit(services, CancelOrder(order_id), ALICE)
        assert succeeded(reply), reply
        status = await wait_final(services, command_id)
        await wait_idle(services, pipeline_groups(settings))

    cancel_event = next(
        e
        for e in await domain_events(services.write, settings.partitions)
        if e.type == "OrderCancelled"
    )
    assert payload(cancel_event)["previous_status"] == "reserved", "cancelled mid-charge"
    assert status.status == "failed" and status.error is not None
    assert (status.error.code, status.error.status) == ("order_cancelled", 409)
    assert [s.name for s in status.steps] == ["accepted", "processing", "stock_reserved", "failed"]

    order = await load_order(services, order_id)
    assert order.status == "cancelled"
    product = await load_product(services, "MUG-1")
    assert (product.on_hand, product.reserved, product.sold, product.reservations) == (
        10,
        0,
        0,
        {},
    )
    assert (await captures(services.write))[f"charge:{order_id}"] == 1
    assert f"refund:{order_id}" in await refunds(services.write)
    view = await orders.get_order(services.read_side, order_id)
    assert view is not None and (view.status, view.refunded) == ("cancelled", True)
    shown = await catalog.get_product(services.read_side, "MUG-1")
    assert shown is not None and (shown.available, shown.sold) == (10, 0)


async def test_cancelling_before_any_stock_was_reserved_leaves_nothing_held(
    services: Services, settings: Settings
) -> None:
    """Cancel while the order is only placed (the process manager is down); when it comes
    back it may reserve, but it gives everything back: nothing stays held, nothing is charged."""
    await create_products(services, ADMIN, {"MUG-1": 6, "TEE-1": 2})
    async with running_workers(settings, ["commands", "projector", "notifier"]):
        command_id = await place_order(services, BOB, {"MUG-1": 2, "TEE-1": 2})
        order_id = await order_id_of(services, command_id)
        await wait_order_status(services, order_id, ["placed"])
        reply = await submit(services, CancelOrder(order_id, "too slow"), BOB)
        assert succeeded(reply), reply
        status = await command_status(services, command_id)
        async with running_workers(settings, ["process"], owner="late"):
            await wait_idle(services, pipeline_groups(settings))

    assert status.status == "failed" and status.error is not None
    assert status.error.code == "order_cancelled"
    assert (await load_order(services, order_id)).status == "cancelled"
    for sku, on_hand in (("MUG-1", 6), ("TEE-1", 2)):
        product = await load_product(services, sku)
        assert (product.on_hand, product.reserved, product.sold, product.reservations) == (
            on_hand,
            0,
            0,
            {},
        )
    held = [
        (e.type, payload(e)["sku"])
        for e in await domain_events(services.write, settings.partitions)
        if e.type in ("StockReserved", "StockReleased")
    ]
    reserved = sorted(sku for kind, sku in held if kind == "StockReserved")
    released = sorted(sku for kind, sku in held if kind == "StockReleased")
    assert reserved == released == ["MUG-1", "TEE-1"]
    assert f"charge:{order_id}" not in await captures(services.write)
    published = await public_events(services, order_id)
    assert [(e["type"], e["refunded"]) for e in published] == [("OrderCancelled", False)]


async def test_an_admin_ships_a_confirmed_order_which_can_then_not_be_cancelled(
    services: Services, settings: Settings
) -> None:
    """ShipOrder: shipped in every model, OrderShipped published and notified; afterwards
    CancelOrder is 409 order_not_cancellable and the stock stays sold."""
    await create_products(services, ADMIN, {"MUG-1": 10})
    async with running_workers(settings):
        order_id = await confirmed_order(services, ALICE, {"MUG-1": 2})
        reply = await submit(services, ShipOrder(order_id), ADMIN)
        assert succeeded(reply), reply
        assert refused(await submit(services, ShipOrder(order_id), ADMIN)) == (
            409,
            "order_not_shippable",
        )
        for actor in (ALICE, ADMIN):
            outcome = await submit(services, CancelOrder(order_id), actor)
            assert refused(outcome) == (409, "order_not_cancellable")
        await wait_idle(services, pipeline_groups(settings))

    assert (await load_order(services, order_id)).status == "shipped"
    product = await load_product(services, "MUG-1")
    assert (product.on_hand, product.reserved, product.sold) == (8, 0, 2)
    view = await orders.get_order(services.read_side, order_id)
    assert view is not None and view.status == "shipped"
    assert [s.status for s in view.timeline][-2:] == ["confirmed", "shipped"]
    published = await public_events(services, order_id)
    assert [e["type"] for e in published] == ["OrderConfirmed", "OrderShipped"]
    shipped = published[1]
    assert set(shipped) == {
        "type",
        "schema_version",
        "event_id",
        "order_id",
        "customer",
        "occurred_at",
    }
    assert (shipped["schema_version"], shipped["customer"]) == (1, "alice")
    inbox = await notifications.inbox(services.read_side, "alice")
    assert inbox.unread == 2 and "shipped" in inbox.items[0].text
    assert await refunds(services.write) == {}


async def test_only_confirmed_orders_ship_and_only_admins_ship_them(
    services: Services, settings: Settings
) -> None:
    """ShipOrder of a rejected or an in-flight order: 409 order_not_shippable; of an unknown
    order: 409 unknown_order; by a customer: 403 forbidden. Nothing changes."""
    await create_products(services, ADMIN, {"MUG-1": 10})
    async with running_workers(settings):
        declined = await place_order(services, ALICE, {"MUG-1": 1}, DECLINED_CARD)
        assert (await wait_final(services, declined)).status == "failed"
        rejected_id = await order_id_of(services, declined)
        confirmed_id = await confirmed_order(services, ALICE, {"MUG-1": 1})
    async with running_workers(settings, ["commands"], owner="no-process"):
        in_flight = await place_order(services, ALICE, {"MUG-1": 1})
        placed_id = await order_id_of(services, in_flight)
        await wait_order_status(services, placed_id, ["placed"])

    for order_id in (rejected_id, placed_id):
        assert refused(await submit(services, ShipOrder(order_id), ADMIN)) == (
            409,
            "order_not_shippable",
        )
    unknown = "o" + "0" * 28
    assert refused(await submit(services, ShipOrder(unknown), ADMIN)) == (409, "unknown_order")
    assert refused(await submit(services, ShipOrder(confirmed_id), ALICE)) == (403, "forbidden")
    assert [(await load_order(services, o)).status for o in (rejected_id, placed_id)] == [
        "rejected",
        "placed",
    ]
    assert (await load_order(services, confirmed_id)).status == "confirmed"


async def test_another_customer_may_not_cancel_an_order_but_an_admin_may(
    services: Services, settings: Settings
) -> None:
    """Bob cancelling Alice's order: 403 forbidden, nothing changes; the admin's cancel works
    and is recorded as by admin."""
    await create_products(services, ADMIN, {"MUG-1": 10})
    async with running_workers(settings):
        order_id = await confirmed_order(services, ALICE, {"MUG-1": 2})
        assert refused(await submit(services, CancelOrder(order_id), BOB)) == (403, "forbidden")
        await wait_idle(services, pipeline_groups(settings))
        assert (await load_order(services, order_id)).status == "confirmed"
        assert (await load_product(services, "MUG-1")).sold == 2
        assert [e["type"] for e in await public_events(services, order_id)] == ["OrderConfirmed"]

        unknown = "o" + "f" * 28
        assert refused(await submit(services, CancelOrder(unknown), BOB)) == (409, "unknown_order")

        assert succeeded(await submit(services, CancelOrder(order_id, "fraud check"), ADMIN))
        await wait_idle(services, pipeline_groups(settings))
    view = await orders.get_order(services.read_side, order_id)
    assert view is not None and view.status == "cancelled"
    assert "Cancelled by admin: fraud check" in [s.detail for s in view.timeline]
    assert (await load_product(services, "MUG-1")).sold == 0
    assert (await notifications.inbox(services.read_side, "bob")).unread == 0
