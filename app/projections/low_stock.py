"""Low stock (admin): active products whose available count is at or under a threshold.

Shown on the sales dashboard, whose live view it announces."""

from __future__ import annotations

from collections.abc import Iterable
from typing import assert_never

import msgspec

from app.domain import products as p
from app.kernel.projection import Applied, EventProjection
from app.kernel.read_model_writes import ReadModelWrites
from app.kernel.views import Change
from app.projections import keys
from app.projections.sales import DASHBOARD


class LowStock(msgspec.Struct, frozen=True):
    """A product on the list: a member of its sorted set (the sku), scored by `available`."""

    sku: str
    available: int


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
                tx.zrem(keys.low_stock(tx.partition), event.sku)
            case (
                p.ProductCreated()
                | p.ProductRestocked()
                | p.StockReserved()
                | p.StockReleased()
                | p.StockCommitted()
                | p.StockReturned()
            ):
                row = LowStock(event.sku, event.stock.on_hand - event.stock.reserved)
                if row.available <= self._threshold:
                    tx.zadd(keys.low_stock(tx.partition), {row.sku: row.available})
                else:
                    tx.zrem(keys.low_stock(tx.partition), row.sku)
            case _:
                assert_never(event)
        return [Change(DASHBOARD, "sales")]
