"""Sales dashboard (admin): revenue, orders by status, top sellers, orders per minute."""

from __future__ import annotations

from collections.abc import Iterable
from typing import assert_never

import msgspec

from app.domain import orders as o
from app.kernel.projection import Applied, EventProjection
from app.kernel.read_model_writes import ReadModelWrites
from app.kernel.rows import HashRow
from app.kernel.views import Change, View
from app.projections import keys
from app.projections.orders import step_of

DASHBOARD = View("admin")
"""The sales dashboard's live view (key "sales"); the low-stock list announces it too. Its
notices say "admin", the admin topic's name."""


class SalesTotals(msgspec.Struct, frozen=True):
    """The totals hash (each field counted up from 0)."""

    revenue_cents: int = 0
    refunded_cents: int = 0
    orders_placed: int = 0


TOTALS = HashRow(SalesTotals)
MINUTES_KEPT_SECONDS = 3600
"""Orders per minute are kept an hour (the dashboard shows the last half hour)."""


def moved(tx: ReadModelWrites, before: str, after: str) -> None:
    """One order left status `before` for `after`."""
    tx.hincrby(keys.sales_by_status(tx.partition), before, -1)
    tx.hincrby(keys.sales_by_status(tx.partition), after, 1)


def sold(tx: ReadModelWrites, lines: Iterable[o.OrderLine], sign: int) -> None:
    for line in lines:
        tx.zincrby(keys.sales_top(tx.partition), sign * line.quantity, line.sku)


class SalesProjection(EventProjection[o.OrderEvent]):
    name = "sales"

    def apply(self, item: Applied[o.OrderEvent], tx: ReadModelWrites) -> Iterable[Change]:
        event = item.event
        match event:
            case o.OrderPlaced():
                tx.hincrby(keys.sales_by_status(tx.partition), step_of(event), 1)
                minute = int(item.stored.at // 60 * 60)
                tx.incr(keys.sales_per_minute(tx.partition, minute))
                # gone an hour after its minute, by the event's clock: a rebuild of older
                # events writes keys that expire at once
                tx.expire_at(
                    keys.sales_per_minute(tx.partition, minute), minute + MINUTES_KEPT_SECONDS
                )
                tx.hincrby(keys.sales_totals(tx.partition), TOTALS.field("orders_placed"), 1)
            case o.OrderStockReserved():
                moved(tx, "placed", step_of(event))
            case o.OrderPaid():
                moved(tx, "reserved", step_of(event))
            case o.OrderConfirmed():
                moved(tx, "paid", step_of(event))
                tx.hincrby(
                    keys.sales_totals(tx.partition),
                    TOTALS.field("revenue_cents"),
                    event.total_cents,
                )
                sold(tx, event.lines, 1)
            case o.OrderShipped():
                moved(tx, "confirmed", step_of(event))
            case o.OrderRejected():
                moved(tx, event.previous_status, step_of(event))
            case o.OrderCancelled():
                moved(tx, event.previous_status, step_of(event))
                if event.previous_status == "confirmed":
                    revenue = TOTALS.field("revenue_cents")
                    tx.hincrby(keys.sales_totals(tx.partition), revenue, -event.total_cents)
                    sold(tx, event.lines, -1)
            case o.OrderRefunded():
                tx.hincrby(
                    keys.sales_totals(tx.partition),
                    TOTALS.field("refunded_cents"),
                    event.total_cents,
                )
            case _:
                assert_never(event)
        return [Change(DASHBOARD, "sales")]
