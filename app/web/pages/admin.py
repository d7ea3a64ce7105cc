"""The admin's pages: the catalog with its command forms, every order, the status page and
the sales dashboard (each with its live fragment)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.queries import orders, sales
from app.queries.admin_status import AdminStatus, admin_status
from app.queries.history import history
from app.web.auth import services_of
from app.web.charts import history_charts
from app.web.forms import FormState
from app.web.layout import page
from app.web.pages.actions import command_forms
from app.web.pages.catalog import products_page
from app.web.pages.common import admin_session, html, renderer
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
    await admin_session(request)
    found = await orders.list_orders(services_of(request).read, None, limit=200)
    return await page(
        request,
        "pages/orders.html",
        ["orders", "commands", "admin"],
        orders=found,
        admin_view=True,
    )


async def pipeline_status(request: Request) -> AdminStatus:
    services = services_of(request)
    return await admin_status(
        services.write, services.read, watched_consumers(), services.settings.partitions
    )


async def admin_status_page(request: Request) -> Response:
    await admin_session(request)
    return await page(
        request,
        "pages/admin_status.html",
        ["admin", "commands"],
        s=await pipeline_status(request),
        charts=history_charts(await history(services_of(request).read)),
    )


async def admin_status_fragment(request: Request) -> Response:
    await admin_session(request)
    return html(renderer(request).admin_status(await pipeline_status(request)))


async def admin_sales_page(request: Request) -> Response:
    await admin_session(request)
    read = services_of(request).read
    return await page(
        request,
        "pages/admin_sales.html",
        ["admin", "commands"],
        d=await sales.sales_dashboard(read),
        low=await sales.low_stock(read),
    )


async def admin_sales_fragment(request: Request) -> Response:
    await admin_session(request)
    read = services_of(request).read
    return html(
        renderer(request).sales(await sales.sales_dashboard(read), await sales.low_stock(read))
    )


routes: list[BaseRoute] = [
    Route("/admin/catalog", admin_catalog),
    Route("/admin/orders", admin_orders),
    Route("/admin/status", admin_status_page),
    Route("/fragments/admin/status", admin_status_fragment),
    Route("/admin/sales", admin_sales_page),
    Route("/fragments/admin/sales", admin_sales_fragment),
]
