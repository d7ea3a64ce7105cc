"""The admin's pages: the catalog with its command forms, every order, the status page and the
console's search (the
sales dashboard's page is made from its declaration, app/read_models/sales.py; the status
page's live region is declared in app/read_models/status.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.kernel.errors import ValidationFailed
from app.kernel.messages import FieldError
from app.queries import orders, search
from app.queries.history import history
from app.read_models.orders import ALL_PER_PAGE, page_number
from app.read_models.status import pipeline_status
from app.web.auth import services_of
from app.web.charts import history_charts
from app.web.forms import FormState
from app.web.layout import page
from app.web.pages.actions import command_forms
from app.web.pages.catalog import products_page
from app.web.pages.common import admin_session
from app.web.watched import watched_consumers


async def admin_catalog(request: Request) -> Response:
    await admin_session(request)
    products, next_after, after = await products_page(request)
    forms = [FormState(spec) for spec in command_forms(request).values()]
    return await page(
        request,
        "pages/admin_catalog.html",
        ["catalog", "commands", "admin"],
        forms=forms,
        products=products,
        next_after=next_after,
        after=after,
    )


async def admin_orders(request: Request) -> Response:
    """Every order, newest first, ALL_PER_PAGE a page (`?page=N`), with the count."""
    await admin_session(request)
    number = page_number(request.query_params.get("page", ""))
    found = await orders.orders_page(
        services_of(request).read_side, None, page=number, per_page=ALL_PER_PAGE
    )
    return await page(
        request,
        "pages/orders.html",
        ["orders", "commands", "admin"],
        orders=found.orders,
        paged=found,
        admin_view=True,
    )


async def admin_status_page(request: Request) -> Response:
    await admin_session(request)
    services = services_of(request)
    return await page(
        request,
        "pages/admin_status.html",
        ["admin", "commands"],
        s=await pipeline_status(services),
        charts=history_charts(await history(services.read_side)),
    )


async def admin_search(request: Request) -> Response:
    """`?q=` a command id, an order id or a SKU: that aggregate's commands, events, statuses
    and dead letters (app/queries/search.py). Admins only, checked before anything is read."""
    await admin_session(request)
    query = request.query_params.get("q", "").strip()
    if query and not search.valid_query(query):
        raise ValidationFailed(
            [FieldError("$.q", "a command id, an order id or a SKU (letters, digits, :._-)")]
        )
    services = services_of(request)
    found = (
        await search.search(
            services.write,
            services.read_side,
            services.statuses,
            watched_consumers(),
            services.settings.partitions,
            query,
        )
        if query
        else None
    )
    return await page(request, "pages/admin_search.html", ["admin"], q=query, found=found)


routes: list[BaseRoute] = [
    Route("/admin/catalog", admin_catalog),
    Route("/admin/orders", admin_orders),
    Route("/admin/status", admin_status_page),
    Route("/admin/search", admin_search),
]
