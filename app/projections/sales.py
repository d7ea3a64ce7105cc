"""Sales dashboard (admin): revenue, orders by status, top sellers, orders per minute."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import assert_never

from app.domain import orders as o
from app.kernel.projection import Applied, Change, EventProjection
from app.kernel.read_model_writes import ReadModelWrites
from app.projections import keys

VIEW = "admin"
PREVIOUS = {"OrderStockReserved": "placed", "OrderPaid": "reserved", "OrderShipped": "confirmed"}
NEXT = {"OrderStockReserved": "reserved", "OrderPaid": "paid", "OrderShipped": "shipped"}
MINUTES_KEPT_SECONDS = 3600
"""Orders per minute are kept an hour (the dashboard shows the last half hour)."""


class SalesProjection(EventProjection[o.OrderEvent]):
    name = "sales"
    handles = frozenset(cls.__name__ for cls in o.ORDER_EVENTS)

    def apply(self, item: Applied[o.OrderEvent], tx: ReadModelWrites) -> Iterable[Change]:
        event = item.event
        by_status = keys.sales_by_status()
        match event:
            case o.OrderPlaced():
                tx.hincrby(by_status, "placed", 1)
                minute = int(item.stored.at // 60 * 60)
                if time.time() - minute < MINUTES_KEPT_SECONDS:  # a rebuild skips old ones
                    tx.incr(keys.sales_per_minute(minute))
                    tx.expire(keys.sales_per_minute(minute), MINUTES_KEPT_SECONDS)
                tx.hincrby(keys.sales_totals(), "orders_placed", 1)
            case o.OrderRefunded():
                tx.hincrby(keys.sales_totals(), "refunded_cents", event.total_cents)
            case o.OrderRejected() | o.OrderCancelled():
                new = "rejected" if isinstance(event, o.OrderRejected) else "cancelled"
                tx.hincrby(by_status, event.previous_status, -1)
                tx.hincrby(by_status, new, 1)
                if isinstance(event, o.OrderCancelled) and event.previous_status == "confirmed":
                    tx.hincrby(keys.sales_totals(), "revenue_cents", -event.total_cents)
                    for line in event.lines:
                        tx.zincrby(keys.sales_top(), -line.quantity, line.sku)
            case o.OrderStockReserved() | o.OrderPaid() | o.OrderShipped():
                tx.hincrby(by_status, PREVIOUS[item.stored.type], -1)
                tx.hincrby(by_status, NEXT[item.stored.type], 1)
            case o.OrderConfirmed():
                tx.hincrby(by_status, "paid", -1)
                tx.hincrby(by_status, "confirmed", 1)
                tx.hincrby(keys.sales_totals(), "revenue_cents", event.total_cents)
                for line in event.lines:
                    tx.zincrby(keys.sales_top(), line.quantity, line.sku)
            case _:
                assert_never(event)
        return [Change(VIEW, "sales")]
