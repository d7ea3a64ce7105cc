"""Catalog: every product with its available stock and units sold. Public; the hottest read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import assert_never

import msgspec

from app.domain import products as p
from app.kernel.projection import Applied, EventProjection
from app.kernel.read_model_writes import ReadModelWrites, Value
from app.kernel.rows import HashRow
from app.kernel.views import Change, View
from app.projections import keys

CATALOG = View("catalog")
"""Its live view: a product changed (key: its sku)."""


class ProductView(msgspec.Struct, frozen=True):
    """A product as the catalog shows it (the API's product)."""

    sku: str
    name: str
    price_cents: int
    available: int
    sold: int
    status: str


class ProductRow(ProductView, frozen=True, kw_only=True, omit_defaults=True):
    """A product's hash: what the catalog shows, and the parts of its stock. A field added
    to ProductView with a default is stored only once it differs from it."""

    on_hand: int
    reserved: int


PRODUCT = HashRow(ProductRow)


def stock_fields(stock: p.Stock) -> dict[str, Value]:
    return PRODUCT.some(
        available=stock.on_hand - stock.reserved,
        on_hand=stock.on_hand,
        reserved=stock.reserved,
        sold=stock.sold,
    )


class CatalogProjection(EventProjection[p.ProductEvent]):
    name = "catalog"

    def apply(self, item: Applied[p.ProductEvent], tx: ReadModelWrites) -> Iterable[Change]:
        event = item.event
        key = keys.product(tx.partition, event.sku)
        match event:
            case p.ProductCreated():
                stock = event.stock
                row = ProductRow(
                    sku=event.sku,
                    name=event.name,
                    price_cents=event.price_cents,
                    available=stock.on_hand - stock.reserved,
                    sold=stock.sold,
                    status="active",
                    on_hand=stock.on_hand,
                    reserved=stock.reserved,
                )
                tx.hset(key, mapping=PRODUCT.whole(row))
                tx.zadd(keys.catalog_index(tx.partition), {event.sku: 0})
            case p.ProductRenamed():
                tx.hset(key, mapping=PRODUCT.some(name=event.name))
            case p.PriceChanged():
                tx.hset(key, mapping=PRODUCT.some(price_cents=event.price_cents))
            case p.ProductDiscontinued():
                tx.hset(key, mapping=PRODUCT.some(status="discontinued"))
            case (
                p.ProductRestocked()
                | p.StockReserved()
                | p.StockReleased()
                | p.StockCommitted()
                | p.StockReturned()
            ):
                tx.hset(key, mapping=stock_fields(event.stock))
            case _:
                assert_never(event)
        return [Change(CATALOG, event.sku)]
