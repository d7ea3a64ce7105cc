"""Catalog queries: products with their available stock."""

from __future__ import annotations

from redis.asyncio import Redis

from app.kernel.redis_types import text_dict, text_list
from app.projections import keys
from app.projections.catalog import PRODUCT, CatalogProjection
from app.projections.catalog import ProductView as ProductView  # the row's shown part

PROJECTIONS = (CatalogProjection.name,)
MAX_PAGE = 1000
product_view = PRODUCT.reader(ProductView)
"""A product's hash as the catalog shows it."""


async def get_product(read: Redis, sku: str) -> ProductView | None:
    record = text_dict(await read.hgetall(keys.product(sku)))
    return product_view(record) if record else None


async def list_products(
    read: Redis, *, after: str = "", limit: int = 100
) -> tuple[list[ProductView], str | None]:
    """A page of products ordered by sku, and the sku to continue after (None on the last)."""
    limit = max(1, min(limit, MAX_PAGE))
    start = f"({after}" if after else "-"
    skus = text_list(
        await read.zrangebylex(keys.catalog_index(), start, "+", start=0, num=limit + 1)
    )
    page = skus[:limit]
    products = [p for p in await get_products(read, page) if p is not None]
    return products, (page[-1] if len(skus) > limit else None)


async def get_products(read: Redis, skus: list[str]) -> list[ProductView | None]:
    """Several products in one round trip, in the order asked (None for an unknown sku)."""
    if not skus:
        return []
    async with read.pipeline(transaction=False) as pipe:
        for sku in skus:
            pipe.hgetall(keys.product(sku))
        records = await pipe.execute()
    return [product_view(r) if r else None for r in records]


async def count_products(read: Redis) -> int:
    return int(await read.zcard(keys.catalog_index()))
