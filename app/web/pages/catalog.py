"""The catalog page (its rows' live region is declared in app/read_models/catalog.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.queries import catalog
from app.read_models.catalog import products_page as page_of
from app.web.auth import services_of
from app.web.layout import page


async def products_page(request: Request) -> tuple[list[catalog.ProductView], str | None, str]:
    """One page of products after `?after=<sku>`: (products, the next page's sku, after)."""
    return await page_of(services_of(request).read_side, request.query_params.get("after", ""))


async def catalog_page(request: Request) -> Response:
    products, next_after, after = await products_page(request)
    return await page(
        request,
        "pages/catalog.html",
        ["catalog", "commands", "notifications"],
        products=products,
        next_after=next_after,
        after=after,
    )


routes: list[BaseRoute] = [
    Route("/", catalog_page),
]
