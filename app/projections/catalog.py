"""Catalog: every product with its available stock and units sold. Public; the hottest read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import assert_never

from app.domain import products as p
from app.kernel.projection import Applied, Change, EventProjection
from app.kernel.read_model_writes import ReadModelWrites
from app.kernel.redis_types import field_map
from app.projections import keys

VIEW = "catalog"


def stock_fields(stock: p.Stock) -> dict[str, int]:
    return {
        "available": stock.on_hand - stock.reserved,
        "on_hand": stock.on_hand,
        "reserved": stock.reserved,
        "sold": stock.sold,
    }


class CatalogProjection(EventProjection[p.ProductEvent]):
    name = "catalog"

    def apply(self, item: Applied[p.ProductEvent], tx: ReadModelWrites) -> Iterable[Change]:
        event = item.event
        key = keys.product(event.sku)
        match event:
            case p.ProductCreated():
                tx.hset(
                    key,
                    mapping=field_map(
                        {
                            "sku": event.sku,
                            "name": event.name,
                            "price_cents": event.price_cents,
                            "status": "active",
                            **stock_fields(event.stock),
                        }
                    ),
                )
                tx.zadd(keys.catalog_index(), {event.sku: 0})
            case p.ProductRenamed():
                tx.hset(key, "name", event.name)
            case p.PriceChanged():
                tx.hset(key, "price_cents", event.price_cents)
            case p.ProductDiscontinued():
                tx.hset(key, "status", "discontinued")
            case (
                p.ProductRestocked()
                | p.StockReserved()
                | p.StockReleased()
                | p.StockCommitted()
                | p.StockReturned()
            ):
                tx.hset(key, mapping=field_map(stock_fields(event.stock)))
            case _:
                assert_never(event)
        return [Change(VIEW, event.sku)]
