"""Low stock (admin): active products whose available count is at or under a threshold."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from redis.asyncio.client import Pipeline

from app.domain import products as p
from app.kernel.projection import Applied, Change, EventProjection
from app.projections import keys

VIEW = "admin"


class LowStockProjection(EventProjection[Any]):
    name = "low_stock"
    handles = frozenset(
        cls.__name__ for cls in p.PRODUCT_EVENTS if cls not in (p.ProductRenamed, p.PriceChanged)
    )

    def __init__(self, event_decoder: msgspec.json.Decoder[Any], threshold: int) -> None:
        super().__init__(event_decoder)
        self._threshold = threshold

    def apply(self, item: Applied[Any], tx: Pipeline) -> Iterable[Change]:
        event = item.event
        if isinstance(event, p.ProductDiscontinued):
            tx.zrem(keys.low_stock(), event.sku)
        else:
            available = event.stock.on_hand - event.stock.reserved
            if available <= self._threshold:
                tx.zadd(keys.low_stock(), {event.sku: available})
            else:
                tx.zrem(keys.low_stock(), event.sku)
        return [Change(VIEW, "low_stock")]
