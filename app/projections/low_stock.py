"""Low stock (admin): active products whose available count is at or under a threshold."""

from __future__ import annotations

from collections.abc import Iterable
from typing import assert_never

from app.domain import products as p
from app.kernel.projection import Applied, Change, EventProjection
from app.kernel.read_model_writes import ReadModelWrites
from app.projections import keys

VIEW = "admin"
LowStockEvent = (
    p.ProductDiscontinued
    | p.ProductCreated
    | p.ProductRestocked
    | p.StockReserved
    | p.StockReleased
    | p.StockCommitted
    | p.StockReturned
)
"""The product events that move a product onto or off the list (the others never decode)."""


class LowStockProjection(EventProjection[LowStockEvent]):
    name = "low_stock"

    def __init__(self, threshold: int) -> None:
        self._threshold = threshold

    def apply(self, item: Applied[LowStockEvent], tx: ReadModelWrites) -> Iterable[Change]:
        event = item.event
        match event:
            case p.ProductDiscontinued():
                tx.zrem(keys.low_stock(), event.sku)
            case (
                p.ProductCreated()
                | p.ProductRestocked()
                | p.StockReserved()
                | p.StockReleased()
                | p.StockCommitted()
                | p.StockReturned()
            ):
                available = event.stock.on_hand - event.stock.reserved
                if available <= self._threshold:
                    tx.zadd(keys.low_stock(), {event.sku: available})
                else:
                    tx.zrem(keys.low_stock(), event.sku)
            case _:
                assert_never(event)
        return [Change(VIEW, "low_stock")]
