"""PlaceOrder's steps, read off its order's events (the order itself knows no command ids).

OrderStockReserved → step stock_reserved      OrderPaid → step payment_captured
OrderConfirmed     → succeeded                 OrderRejected → failed (the reason)
OrderCancelled     → failed (order_cancelled), if the order was still in flight
"""

from __future__ import annotations

from typing import assert_never

from app.domain import orders as o
from app.kernel.command_status import StatusChange
from app.kernel.errors import problem


def place_order_step(event: o.OrderEvent) -> StatusChange | None:
    match event:
        case o.OrderStockReserved():
            return StatusChange("stock_reserved")
        case o.OrderPaid():
            return StatusChange("payment_captured")
        case o.OrderConfirmed():
            return StatusChange(status="succeeded")
        case o.OrderRejected():
            return StatusChange(status="failed", error=o.rejection(event.reason, event.detail))
        case o.OrderCancelled():
            if event.previous_status not in o.IN_FLIGHT:
                return None
            cancelled = problem(
                "order_cancelled", 409, "The order was cancelled before it was confirmed"
            )
            return StatusChange(status="failed", error=cancelled)
        case o.OrderPlaced() | o.OrderShipped() | o.OrderRefunded():
            return None
        case _:
            assert_never(event)
