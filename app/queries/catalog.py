"""Catalog queries: products with their available stock.

The catalog's index is kept per partition; a page merges the next skus of every partition's
index (kernel/read_side.py: `first_after`): the page a single index would give, whatever
the partitions."""

from __future__ import annotations

from app.kernel.read_side import ReadSide
from app.kernel.redis_types import text_dict
from app.projections import keys
from app.projections.catalog import PRODUCT, CatalogProjection
from app.projections.catalog import ProductView as ProductView  # the row's shown part

PROJECTIONS = (CatalogProjection.name,)
MAX_PAGE = 1000
product_view = PRODUCT.reader(ProductView)
"""A product's hash as the catalog shows it."""


async def get_product(read: ReadSide, sku: str) -> ProductView | None:
    record = text_dict(await read.redis.hgetall(keys.product(read.partition_of(sku), sku)))
    return product_view(record) if record else None


async def list_products(
    read: ReadSide, *, after: str = "", limit: int = 100
) -> tuple[list[ProductView], str | None]:
    """A page of products ordered by sku, and the sku to continue after (None on the last)."""
    limit = max(1, min(limit, MAX_PAGE))
    skus = await read.first_after(keys.catalog_index, after, limit + 1)
    page = skus[:limit]
    products = [p for p in await get_products(read, page) if p is not None]
    return products, (page[-1] if len(skus) > limit else None)


async def get_products(read: ReadSide, skus: list[str]) -> list[ProductView | None]:
    """Several products in one round trip, in the order asked (None for an unknown sku)."""
    if not skus:
        return []
    async with read.redis.pipeline(transaction=False) as pipe:
        for sku in skus:
            pipe.hgetall(keys.product(read.partition_of(sku), sku))
        records = await pipe.execute()
    return [product_view(r) if r else None for r in records]


async def count_products(read: ReadSide) -> int:
    (counts,) = await read.gather(lambda pipe, p: pipe.zcard(keys.catalog_index(p)))
    return sum(int(count) for count in counts)
