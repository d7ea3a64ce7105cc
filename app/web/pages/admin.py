"""The admin's pages: the catalog with its command forms, every order and the status page (the
sales dashboard's page is made from its declaration, app/read_models/sales.py; the status
page's live region is declared in app/read_models/status.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.queries import orders
from app.queries.history import history
from app.read_models.status import pipeline_status
from app.web.auth import services_of
from app.web.charts import history_charts
from app.web.forms import FormState
from app.web.layout import page
from app.web.pages.actions import command_forms
from app.web.pages.catalog import products_page
from app.web.pages.common import admin_session


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
    await admin_session(request)
    found = await orders.list_orders(services_of(request).read_side, None, limit=200)
    return await page(
        request,
        "pages/orders.html",
        ["orders", "commands", "admin"],
        orders=found,
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


routes: list[BaseRoute] = [
    Route("/admin/catalog", admin_catalog),
    Route("/admin/orders", admin_orders),
    Route("/admin/status", admin_status_page),
]
