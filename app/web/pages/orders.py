"""A customer's orders (an admin's: every order, under /admin/orders) and one order's page
(their live regions are declared in app/read_models/orders.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.kernel.errors import NotFound
from app.queries import orders
from app.web.api import visible_order
from app.web.auth import actor_of, services_of
from app.web.layout import page
from app.web.pages.common import login_redirect, signed_in


async def orders_page(request: Request) -> Response:
    session = await signed_in(request)
    if session is None:
        return login_redirect(request)
    found = await orders.list_orders(services_of(request).read_side, session.username)
    return await page(
        request,
        "pages/orders.html",
        ["orders", "commands", "notifications"],
        orders=found,
        admin_view=False,
    )


async def order_page(request: Request) -> Response:
    session = await signed_in(request)
    if session is None:
        return login_redirect(request)
    order = await visible_order(request, actor_of(session), request.path_params["order_id"])
    if order is None:
        raise NotFound("No such order")
    return await page(request, "pages/order.html", ["orders", "commands", "notifications"], o=order)


routes: list[BaseRoute] = [
    Route("/orders", orders_page),
    Route("/orders/{order_id}", order_page),
]
