"""The catalog: the page, and its rows for htmx (re-fetched when the socket opens)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.queries import catalog
from app.web.api import SKU
from app.web.auth import services_of
from app.web.layout import page
from app.web.pages.common import html, renderer

PAGE_SIZE = 100


async def products_page(request: Request) -> tuple[list[catalog.ProductView], str | None, str]:
    """One page of products after `?after=<sku>`: (products, the next page's sku, after)."""
    after = request.query_params.get("after", "")
    if after and not SKU.fullmatch(after):
        after = ""
    products, next_after = await catalog.list_products(
        services_of(request).read, after=after, limit=PAGE_SIZE
    )
    return products, next_after, after


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


async def catalog_rows(request: Request) -> Response:
    products, _next, _after = await products_page(request)
    render = renderer(request)
    return html("".join(render.product_row(p) for p in products))


routes: list[BaseRoute] = [
    Route("/", catalog_page),
    Route("/fragments/catalog", catalog_rows),
]
