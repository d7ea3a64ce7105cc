"""ImportCatalog: many CreateProducts in one request, each row its own transaction."""

from __future__ import annotations

from typing import Annotated

import msgspec

from app.domain.products import CreateProduct
from app.domain.rules import CommandStruct, InitialStock, PriceCents, ProductName, Sku

MAX_ROWS = 10_000


class ProductRow(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sku: Sku
    name: ProductName
    price_cents: PriceCents
    initial_stock: InitialStock = 0

    def as_command(self) -> CreateProduct:
        return CreateProduct(self.sku, self.name, self.price_cents, self.initial_stock)


class ImportCatalog(CommandStruct, frozen=True):
    products: Annotated[list[ProductRow], msgspec.Meta(min_length=1, max_length=MAX_ROWS)]
