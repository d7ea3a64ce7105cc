"""Customer orders: each order's current status and total, indexed per customer and overall."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, assert_never

import msgspec

from app.domain import orders as o
from app.kernel.projection import Applied, Change, EventProjection
from app.kernel.read_model_writes import ReadModelWrites
from app.projections import keys

VIEW = "orders"
Step = o.OrderStatus | Literal["refunded"]


def step_of(event: o.OrderEvent) -> Step:
    """The step an order event records: the status it leaves the order in, or `refunded`."""
    match event:
        case o.OrderPlaced():
            return "placed"
        case o.OrderStockReserved():
            return "reserved"
        case o.OrderPaid():
            return "paid"
        case o.OrderConfirmed():
            return "confirmed"
        case o.OrderRejected():
            return "rejected"
        case o.OrderCancelled():
            return "cancelled"
        case o.OrderShipped():
            return "shipped"
        case o.OrderRefunded():
            return "refunded"
        case _:
            assert_never(event)


def order_change(customer: str, order_id: str) -> Change:
    return Change(VIEW, f"{customer}/{order_id}")


class OrdersProjection(EventProjection[o.OrderEvent]):
    name = "orders"

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
                        "status": step_of(event),
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
                tx.hset(
                    key,
                    mapping={"status": step_of(event), "updated_at": at, "reason": event.reason},
                )
            case o.OrderStockReserved() | o.OrderPaid() | o.OrderConfirmed() | o.OrderShipped():
                tx.hset(key, mapping={"status": step_of(event), "updated_at": at})
            case _:
                assert_never(event)
        return [order_change(event.customer, event.order_id)]
