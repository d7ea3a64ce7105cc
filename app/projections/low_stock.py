"""Low stock (admin): active products whose available count is at or under a threshold."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, assert_never

import msgspec

from app.domain import products as p
from app.kernel.projection import Applied, Change, EventProjection
from app.kernel.read_model_writes import ReadModelWrites
from app.projections import keys

VIEW = "admin"


class LowStockProjection(EventProjection[p.ProductEvent]):
    name = "low_stock"
    handles = frozenset(
        cls.__name__ for cls in p.PRODUCT_EVENTS if cls not in (p.ProductRenamed, p.PriceChanged)
    )

    def __init__(self, event_decoder: msgspec.json.Decoder[Any], threshold: int) -> None:
        super().__init__(event_decoder)
        self._threshold = threshold

    def apply(self, item: Applied[p.ProductEvent], tx: ReadModelWrites) -> Iterable[Change]:
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
            case p.ProductRenamed() | p.PriceChanged():
                return []  # not handled: never decoded, listed so every case is accounted for
            case _:
                assert_never(event)
        return [Change(VIEW, "low_stock")]
