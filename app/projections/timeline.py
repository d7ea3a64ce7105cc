"""Order timeline: every step of one order, with its time."""

from __future__ import annotations

from collections.abc import Iterable
from typing import assert_never

import msgspec

from app.domain import orders as o
from app.domain.money import dollars
from app.domain.orders import REJECT_REASONS
from app.kernel.projection import Applied, EventProjection
from app.kernel.read_model_writes import ReadModelWrites
from app.kernel.views import Change
from app.projections import keys
from app.projections.orders import order_change, step_of


class TimelineEntry(msgspec.Struct, frozen=True):
    """One step of the order, a JSON entry of its list (the order query reads it back)."""

    status: str
    at: float
    detail: str = ""


def describe(event: o.OrderEvent) -> str:
    match event:
        case o.OrderPlaced():
            lines = f"{len(event.lines)} line{'s' if len(event.lines) != 1 else ''}"
            return f"{lines}, total {dollars(event.total_cents)}"
        case o.OrderStockReserved():
            return "Stock reserved"
        case o.OrderPaid():
            return "Payment captured"
        case o.OrderConfirmed():
            return ""
        case o.OrderRejected():
            return REJECT_REASONS.get(event.reason, event.reason)
        case o.OrderCancelled():
            given = "" if event.reason == o.NO_REASON_GIVEN else f": {event.reason}"
            return f"Cancelled by {event.by}{given}"
        case o.OrderRefunded():
            return "Payment refunded"
        case o.OrderShipped():
            return "Shipped"
        case _:
            assert_never(event)


class TimelineProjection(EventProjection[o.OrderEvent]):
    name = "timeline"

    def apply(self, item: Applied[o.OrderEvent], tx: ReadModelWrites) -> Iterable[Change]:
        event = item.event
        entry = TimelineEntry(step_of(event), item.stored.at, describe(event))
        tx.rpush(keys.timeline(tx.partition, event.order_id), msgspec.json.encode(entry))
        return [order_change(event.customer, event.order_id)]
