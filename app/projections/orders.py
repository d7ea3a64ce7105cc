"""Customer orders: each order's current status and total, indexed per customer and overall."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, assert_never

import msgspec

from app.domain import orders as o
from app.kernel.projection import Applied, EventProjection
from app.kernel.read_model_writes import ReadModelWrites
from app.kernel.rows import HashRow
from app.kernel.views import Change, View
from app.projections import keys

ORDERS = View("orders")
"""Its live view (the timeline announces it too): key `<customer>/<order id>`."""
Step = o.OrderStatus | Literal["refunded"]


class Line(msgspec.Struct, frozen=True):
    sku: str
    quantity: int
    unit_price_cents: int


class OrderRow(msgspec.Struct, frozen=True, kw_only=True):
    """An order's hash."""

    order_id: str
    customer: str
    status: str
    lines: list[Line]
    total_cents: int
    card_last4: str
    placed_at: float
    updated_at: float
    reason: str = ""
    refunded: bool | None = None
    """True once it is refunded (not stored before)."""


ORDER = HashRow(OrderRow)


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
    return Change(ORDERS, f"{customer}/{order_id}")


class OrdersProjection(EventProjection[o.OrderEvent]):
    name = "orders"

    def apply(self, item: Applied[o.OrderEvent], tx: ReadModelWrites) -> Iterable[Change]:
        event = item.event
        at = item.stored.at
        key = keys.order(tx.partition, event.order_id)
        match event:
            case o.OrderPlaced():
                row = OrderRow(
                    order_id=event.order_id,
                    customer=event.customer,
                    status=step_of(event),
                    lines=[Line(x.sku, x.quantity, x.unit_price_cents) for x in event.lines],
                    total_cents=event.total_cents,
                    card_last4=event.card_last4,
                    placed_at=at,
                    updated_at=at,
                )
                tx.hset(key, mapping=ORDER.whole(row))
                tx.zadd(keys.orders_of(tx.partition, event.customer), {event.order_id: at})
                tx.zadd(keys.all_orders(tx.partition), {event.order_id: at})
            case o.OrderRefunded():
                tx.hset(key, mapping=ORDER.some(refunded=True, updated_at=at))
            case o.OrderRejected() | o.OrderCancelled():
                fields = ORDER.some(status=step_of(event), updated_at=at, reason=event.reason)
                tx.hset(key, mapping=fields)
            case o.OrderStockReserved() | o.OrderPaid() | o.OrderConfirmed() | o.OrderShipped():
                tx.hset(key, mapping=ORDER.some(status=step_of(event), updated_at=at))
            case _:
                assert_never(event)
        return [order_change(event.customer, event.order_id)]
