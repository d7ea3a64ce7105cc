"""The catalog: every product, for anyone, each change pushed to everyone watching."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from app.domain.rules import Sku
from app.kernel.read_side import ReadSide
from app.projections.catalog import CATALOG, CatalogProjection
from app.queries import catalog
from app.queries.catalog import ProductView
from app.web.live_models import Audience, Feed, LiveReadModel, Region, RegionRequest, fragment

if TYPE_CHECKING:
    from app.services import Services

PAGE_SIZE = 100


async def products_page(read: ReadSide, after: str) -> tuple[list[ProductView], str | None, str]:
    """A page of the catalog after sku `after` (ignored unless it is a sku): (its products,
    the sku the next page starts after, the `after` used)."""
    try:
        msgspec.convert(after, Sku)
    except msgspec.ValidationError:
        after = ""
    products, next_after = await catalog.list_products(read, after=after, limit=PAGE_SIZE)
    return products, next_after, after


async def rows(asked: RegionRequest[Services]) -> list[ProductView]:
    products, _next, _after = await products_page(
        asked.services.read_side, asked.query.get("after", "")
    )
    return products


DECLARED: LiveReadModel[Services, ProductView] = LiveReadModel(
    view=CATALOG,
    projections=(Feed(CatalogProjection, audited=True),),
    load=lambda services, skus: catalog.get_products(services.read_side, skus),
    fragment=fragment("product_row", item="p"),
    watchers=Audience.ANYONE,
    regions=(Region("catalog", "/fragments/catalog", rows),),
)
