"""PlaceOrder end to end with every worker running: steps, write model, read models, events."""

from __future__ import annotations

import msgspec

from app.config import Settings
from app.kernel import keys
from app.kernel.partitions import partition_of
from app.queries import catalog, notifications, orders
from app.services import Services
from tests.integration.conftest import ADMIN, ALICE, running_workers
from tests.support.orders_helpers import (
    create_products,
    domain_events,
    load_order,
    load_product,
    order_id_of,
    payload,
    pipeline_groups,
    place_order,
    stream_items,
    wait_final,
    wait_idle,
)

PUBLIC_CONFIRMED_FIELDS = {
    "type",
    "schema_version",
    "event_id",
    "order_id",
    "customer",
    "occurred_at",
    "total_cents",
    "lines",
}


async def test_an_order_walks_every_step_and_is_confirmed_everywhere(
    services: Services, settings: Settings
) -> None:
    """accepted → processing → stock_reserved → payment_captured → succeeded, and every model
    (write, orders, timeline, catalog, integration stream, inbox) agrees the order is confirmed."""
    await create_products(services, ADMIN, {"MUG-1": 10, "TEE-1": 5}, price_cents=1200)
    async with running_workers(settings):
        command_id = await place_order(services, ALICE, {"MUG-1": 2, "TEE-1": 1})
        status = await wait_final(services, command_id)
        order_id = await order_id_of(services, command_id)
        await wait_idle(services, pipeline_groups(settings))

        assert status.status == "succeeded", status
        assert status.type == "PlaceOrder" and status.error is None
        assert [step.name for step in status.steps] == [
            "accepted",
            "processing",
            "stock_reserved",
            "payment_captured",
            "succeeded",
        ]
        moments = [step.at for step in status.steps]
        assert all(at is not None for at in moments) and moments == sorted(moments)  # type: ignore[type-var]
        assert status.accepted_at == moments[0] and status.completed_at == moments[-1]
        assert status.position is not None

        order = await load_order(services, order_id)
        assert order.status == "confirmed" and order.customer == "alice"
        assert order.total_cents == 3 * 1200 and order.card_last4 == "4242"
        assert command_id == f"{order.order_id}-{partition_of(order.order_id, 4)}"
        assert order.payment_ref.startswith("ch_")
        assert [(line.sku, line.quantity) for line in order.lines] == [("MUG-1", 2), ("TEE-1", 1)]

        for sku, on_hand, bought in (("MUG-1", 10, 2), ("TEE-1", 5, 1)):
            product = await load_product(services, sku)
            stock = (product.on_hand, product.reserved, product.sold)
            assert stock == (on_hand - bought, 0, bought)
            assert product.reservations == {}
            shown = await catalog.get_product(services.read_side, sku)
            assert shown is not None
            assert (shown.available, shown.sold) == (on_hand - bought, bought)

        view = await orders.get_order(services.read_side, order_id)
        assert view is not None
        assert (view.status, view.customer, view.total_cents, view.card_last4) == (
            "confirmed",
            "alice",
            3600,
            "4242",
        )
        assert [step.status for step in view.timeline] == [
            "placed",
            "reserved",
            "paid",
            "confirmed",
        ]
        assert [o.order_id for o in await orders.list_orders(services.read_side, "alice")] == [
            order_id
        ]
        assert await orders.list_orders(services.read_side, "bob") == []

        events = [
            e
            for e in await domain_events(services.write, settings.partitions)
            if payload(e).get("order_id") == order_id
        ]
        assert sorted(e.type for e in events if e.aggregate == "product") == [
            "StockCommitted",
            "StockCommitted",
            "StockReserved",
            "StockReserved",
        ]

        stream = keys.integration(partition_of(order_id, settings.partitions))
        published = [fields["e"] for _id, fields in await stream_items(services.write, stream)]
        assert len(published) == 1
        public = msgspec.json.decode(published[0])
        assert set(public) == PUBLIC_CONFIRMED_FIELDS
        assert public["type"] == "OrderConfirmed" and public["schema_version"] == 1
        assert public["order_id"] == order_id and public["customer"] == "alice"
        assert public["total_cents"] == 3600
        assert public["lines"] == [{"sku": "MUG-1", "quantity": 2}, {"sku": "TEE-1", "quantity": 1}]
        assert "4242" not in published[0] and "tok_" not in published[0]
        assert "@" not in published[0]

        inbox = await notifications.inbox(services.read_side, "alice")
        assert inbox.unread == 1 and [n.order_id for n in inbox.items] == [order_id]
        assert "confirmed" in inbox.items[0].text
        assert (await notifications.inbox(services.read_side, "bob")).unread == 0
