"""Customer orders: each order's current status and total, indexed per customer and overall."""

from __future__ import annotations

from collections.abc import Iterable
from typing import assert_never

import msgspec

from app.domain import orders as o
from app.kernel.projection import Applied, Change, EventProjection
from app.kernel.read_model_writes import ReadModelWrites
from app.projections import keys

VIEW = "orders"
STATUS_AFTER = {
    "OrderStockReserved": "reserved",
    "OrderPaid": "paid",
    "OrderConfirmed": "confirmed",
    "OrderRejected": "rejected",
    "OrderCancelled": "cancelled",
    "OrderShipped": "shipped",
}


def order_change(customer: str, order_id: str) -> Change:
    return Change(VIEW, f"{customer}/{order_id}")


class OrdersProjection(EventProjection[o.OrderEvent]):
    name = "orders"
    handles = frozenset(cls.__name__ for cls in o.ORDER_EVENTS)

    def apply(self, item: Applied[o.OrderEvent], tx: ReadModelWrites) -> Iterable[Change]:
        event = item.event
        at = item.stored.at
        key = keys.order(event.order_id)
        match event:
            case o.OrderPlaced():
                tx.hset(
                    key,
                    mapping={
                        "order_id": event.order_id,
                        "customer": event.customer,
                        "status": "placed",
                        "lines": msgspec.json.encode(event.lines),
                        "total_cents": event.total_cents,
                        "card_last4": event.card_last4,
                        "placed_at": at,
                        "updated_at": at,
                        "reason": "",
                    },
                )
                tx.zadd(keys.orders_of(event.customer), {event.order_id: at})
                tx.zadd(keys.all_orders(), {event.order_id: at})
            case o.OrderRefunded():
                tx.hset(key, mapping={"refunded": 1, "updated_at": at})
            case o.OrderRejected() | o.OrderCancelled():
                status = "rejected" if isinstance(event, o.OrderRejected) else "cancelled"
                tx.hset(key, mapping={"status": status, "updated_at": at, "reason": event.reason})
            case o.OrderStockReserved() | o.OrderPaid() | o.OrderConfirmed() | o.OrderShipped():
                tx.hset(key, mapping={"status": STATUS_AFTER[item.stored.type], "updated_at": at})
            case _:
                assert_never(event)
        return [order_change(event.customer, event.order_id)]
