"""One example of every message a projection or process reads, by the stream it comes on.

`tests/unit/projections/test_every_projection.py` checks these cover every event type there
is, so an event added to the domain without an example here fails that test first.
"""

from __future__ import annotations

import msgspec

from app.domain import order_integration as oi
from app.domain import orders as o
from app.domain import products as p
from app.domain.order_integration import PublicLine
from app.domain.orders import OrderLine
from app.domain.products import Stock
from app.kernel import keys
from app.projections.command_log import JournalEntry

SKU = "MUG-001"
ORDER_ID = "o0123456789abcdef0123456789ab"
LINES = [OrderLine(SKU, 2, 1200)]
AT = 1_700_000_000.0

PRODUCT_EVENTS: list[msgspec.Struct] = [
    p.ProductCreated(SKU, "Blue mug", 1200, Stock(3, 0, 0)),
    p.ProductRenamed(SKU, "Red mug"),
    p.PriceChanged(SKU, 1500),
    p.ProductRestocked(SKU, 10, Stock(13, 0, 0)),
    p.ProductDiscontinued(SKU),
    p.StockReserved(SKU, ORDER_ID, 2, Stock(13, 2, 0)),
    p.StockReleased(SKU, ORDER_ID, 2, Stock(13, 0, 0)),
    p.StockCommitted(SKU, ORDER_ID, 2, Stock(11, 0, 2)),
    p.StockReturned(SKU, ORDER_ID, 2, Stock(13, 0, 0)),
]
ORDER_EVENTS: list[msgspec.Struct] = [
    o.OrderPlaced(ORDER_ID, "alice", LINES, 2400, "4242"),
    o.OrderStockReserved(ORDER_ID, "alice"),
    o.OrderPaid(ORDER_ID, "alice", "ch_1", 2400),
    o.OrderConfirmed(ORDER_ID, "alice", LINES, 2400),
    o.OrderRejected(ORDER_ID, "alice", "reserved", "payment_declined", "Declined"),
    o.OrderCancelled(ORDER_ID, "alice", "confirmed", LINES, 2400, True, "oops", "alice"),
    o.OrderShipped(ORDER_ID, "alice"),
    o.OrderRefunded(ORDER_ID, "alice", "re_1", 2400),
]
INTEGRATION_EVENTS: list[msgspec.Struct] = [
    oi.OrderConfirmedV1(
        event_id=f"{ORDER_ID}:confirmed",
        order_id=ORDER_ID,
        customer="alice",
        occurred_at=AT,
        total_cents=2400,
        lines=[PublicLine(SKU, 2)],
    ),
    oi.OrderRejectedV1(
        event_id=f"{ORDER_ID}:rejected",
        order_id=ORDER_ID,
        customer="alice",
        occurred_at=AT,
        reason="payment_declined",
        detail="The card was declined",
    ),
    oi.OrderCancelledV1(
        event_id=f"{ORDER_ID}:cancelled",
        order_id=ORDER_ID,
        customer="alice",
        occurred_at=AT,
        reason="oops",
        refunded=True,
    ),
    oi.OrderShippedV1(
        event_id=f"{ORDER_ID}:shipped", order_id=ORDER_ID, customer="alice", occurred_at=AT
    ),
]
JOURNAL_ENTRIES: list[msgspec.Struct] = [
    JournalEntry("c1-0", "RestockProduct", "admin", "succeeded", str(AT - 0.1), str(AT)),
    JournalEntry("c2-0", "PlaceOrder", "alice", "failed", str(AT - 1), str(AT), "unknown_product"),
]


def on_stream(stream: str) -> list[msgspec.Struct]:
    """The examples of what `stream` carries (a stream of partition 0)."""
    by_stream = {
        keys.events(0): PRODUCT_EVENTS + ORDER_EVENTS,
        keys.integration(0): INTEGRATION_EVENTS,
        keys.journal(0): JOURNAL_ENTRIES,
    }
    return by_stream[stream]
