"""A customer's orders (an admin's: every order, under /admin/orders) and one order's page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.kernel.errors import NotFound
from app.queries import orders
from app.web.api import visible_order
from app.web.auth import actor_of, services_of
from app.web.layout import page
from app.web.pages.common import html, login_redirect, renderer, signed_in


async def orders_page(request: Request) -> Response:
    session = await signed_in(request)
    if session is None:
        return login_redirect(request)
    found = await orders.list_orders(services_of(request).read, session.username)
    return await page(
        request,
        "pages/orders.html",
        ["orders", "commands", "notifications"],
        orders=found,
        admin_view=False,
    )


async def order_rows(request: Request) -> Response:
    session = await signed_in(request)
    if session is None:
        raise NotFound()
    admin_view = request.query_params.get("all") == "1" and "admin" in session.roles
    customer = None if admin_view else session.username
    found = await orders.list_orders(services_of(request).read, customer, limit=200)
    return html(
        "".join(
            renderer(request).fragment("order_row", o=o, oob=False, admin_view=admin_view)
            for o in found
        )
    )


async def order_page(request: Request) -> Response:
    session = await signed_in(request)
    if session is None:
        return login_redirect(request)
    order = await visible_order(request, actor_of(session), request.path_params["order_id"])
    if order is None:
        raise NotFound("No such order")
    return await page(request, "pages/order.html", ["orders", "commands", "notifications"], o=order)


async def order_fragment(request: Request) -> Response:
    session = await signed_in(request)
    order = None
    if session is not None:
        order = await visible_order(request, actor_of(session), request.path_params["order_id"])
    if order is None:
        raise NotFound("No such order")
    return html(renderer(request).fragment("order_detail", o=order, oob=False))


routes: list[BaseRoute] = [
    Route("/orders", orders_page),
    Route("/fragments/orders", order_rows),
    Route("/orders/{order_id}", order_page),
    Route("/fragments/orders/{order_id}", order_fragment),
]
