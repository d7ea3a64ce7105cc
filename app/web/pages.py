"""HTML pages and the htmx endpoints behind their forms.

Every page reads without JavaScript; with it, forms post through htmx and live regions
follow the WebSocket. Forms go through the same intake as the JSON API.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from app.adapters.sessions import COOKIE, Session
from app.kernel import keys
from app.kernel.errors import Forbidden, NotFound, ProblemError, Unauthenticated, ValidationFailed
from app.kernel.messages import Actor, FieldError
from app.kernel.partitions import partition_of_command
from app.kernel.redis_types import text_dict
from app.queries import catalog, notifications, orders, sales
from app.queries.admin_status import admin_status
from app.queries.history import history
from app.queries.waterfall import command_waterfall
from app.web.api import SKU, set_session_cookie, visible_command, visible_order
from app.web.auth import actor_for, actor_of, same_origin, services_of, session_of
from app.web.charts import history_charts
from app.web.forms import FORMS, FormState, document_from_form, with_errors
from app.web.layout import page
from app.web.watched import watched_consumers

PAGE_SIZE = 100
MAX_CART_QUANTITY = 100


def renderer(request: Request) -> Any:
    return request.app.state.renderer


def login_redirect(request: Request) -> Response:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


async def signed_in(request: Request) -> Session | None:
    return await session_of(request)


async def admin_session(request: Request) -> Session:
    session = await session_of(request)
    if session is None or "admin" not in session.roles:
        raise Forbidden("This page is for admins")
    return session


def html(fragment: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(fragment, status_code=status_code)


# --- catalog -----------------------------------------------------------------------------


async def products_page(request: Request) -> tuple[list[catalog.ProductView], str | None, str]:
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


# --- sessions --------------------------------------------------------------------------------


def safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


async def login_page(request: Request) -> Response:
    return await page(
        request,
        "pages/login.html",
        ["catalog"],
        next=safe_next(request.query_params.get("next")),
        error="",
        username="",
    )


async def login_form(request: Request) -> Response:
    if request.headers.get("origin") is not None and not same_origin(request):
        raise Forbidden("Cross-site login refused", code="csrf_failed")
    form = await request.form()
    username = str(form.get("username", ""))
    password = str(form.get("password", ""))
    target = safe_next(str(form.get("next", "/")))
    services = services_of(request)
    user = await services.users.sign_in(username, password)
    if user is None:
        return await page(
            request,
            "pages/login.html",
            ["catalog"],
            status_code=401,
            next=target,
            error="Wrong username or password",
            username=username,
        )
    token, _session = await services.sessions.create(user.username, user.roles)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, token)
    return response


async def logout_form(request: Request) -> Response:
    await actor_for(request)
    await services_of(request).sessions.delete(request.cookies.get(COOKIE))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# --- orders ------------------------------------------------------------------------------------


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


# --- cart and checkout ----------------------------------------------------------------------


async def cart_lines(request: Request, user: str) -> list[dict[str, Any]]:
    services = services_of(request)
    cart = sorted(text_dict(await services.write.hgetall(keys.ui_state("cart", user))).items())
    products = await catalog.get_products(services.read, [sku for sku, _ in cart])
    return [
        {"sku": sku, "quantity": int(quantity), "product": product}
        for (sku, quantity), product in zip(cart, products, strict=True)
    ]


async def checkout_page(request: Request) -> Response:
    session = await signed_in(request)
    if session is None:
        return login_redirect(request)
    return await page(
        request,
        "pages/checkout.html",
        ["catalog", "commands", "notifications"],
        lines=await cart_lines(request, session.username),
        errors={},
        problem=None,
        status=None,
    )


async def customer(request: Request) -> Actor:
    actor = await actor_for(request)
    if not actor.authenticated:
        raise Unauthenticated()
    return actor


async def add_to_cart(request: Request) -> Response:
    actor = await customer(request)
    assert actor.username is not None
    form = await request.form()
    sku = str(form.get("sku", ""))
    raw_quantity = str(form.get("quantity", "1")) or "1"
    if not SKU.fullmatch(sku) or not raw_quantity.isdigit() or not 1 <= int(raw_quantity) <= 100:
        raise ValidationFailed([FieldError("$.quantity", "A quantity from 1 to 100")])
    key = keys.ui_state("cart", actor.username)
    services = services_of(request)
    total = await services.write.hincrby(key, sku, int(raw_quantity))
    if total > MAX_CART_QUANTITY:
        await services.write.hset(key, sku, MAX_CART_QUANTITY)
    count = await services.write.hlen(key)
    return html(renderer(request).fragment("cart_summary", cart_count=count, added=sku))


async def clear_cart(request: Request) -> Response:
    actor = await customer(request)
    assert actor.username is not None
    await services_of(request).write.delete(keys.ui_state("cart", actor.username))
    return RedirectResponse("/checkout", status_code=303)


async def place_order(request: Request) -> Response:
    """Checkout: the cart's lines with their (edited) quantities, and the card."""
    actor = await customer(request)
    assert actor.username is not None
    form = await request.form()
    lines = []
    for name, value in form.multi_items():
        if name.startswith("qty-") and isinstance(value, str) and value.strip() not in ("", "0"):
            lines.append({"sku": name[4:], "quantity": value.strip()})
    document = {
        "type": "PlaceOrder",
        "lines": lines,
        "card_number": str(form.get("card_number", "")).replace(" ", ""),
    }
    services = services_of(request)
    errors: dict[str, str] = {}
    status = None
    failure = None
    try:
        command = services.intake.convert(document)
        reply = await services.intake.submit(
            command, actor, idempotency_key=str(form.get("idempotency_key", "")) or None
        )
        if reply.error is not None:
            failure = reply.error
        else:
            await services.write.delete(keys.ui_state("cart", actor.username))
            partition = partition_of_command(reply.command_id, services.settings.partitions)
            assert partition is not None
            stored = await services.statuses.get(partition, reply.command_id)
            status = stored.view if stored else None
    except ValidationFailed as exc:
        for error in exc.errors or []:
            errors[error.path.removeprefix("$.")] = error.message
        failure = exc.to_problem()
    except ProblemError as exc:
        failure = exc.to_problem()
    code = 202 if status is not None else (failure.status if failure else 200)
    return html(
        renderer(request).fragment(
            "checkout_result",
            status=status,
            problem=failure,
            errors=errors,
            lines=await cart_lines(request, actor.username),
        ),
        code,
    )


# --- command status ------------------------------------------------------------------------


async def command_page(request: Request) -> Response:
    command = await visible_command(request)
    services = services_of(request)
    return await page(
        request,
        "pages/command.html",
        ["commands", "notifications"],
        c=command,
        w=await command_waterfall(
            services.read, command.command_id, services.settings.trace_ui_url
        ),
    )


async def command_fragment(request: Request) -> Response:
    return html(renderer(request).command_status(await visible_command(request)))


# --- notifications -----------------------------------------------------------------------


async def notifications_page(request: Request) -> Response:
    session = await signed_in(request)
    if session is None:
        return login_redirect(request)
    inbox = await notifications.inbox(services_of(request).read, session.username, limit=50)
    return await page(request, "pages/notifications.html", ["notifications"], full_inbox=inbox)


async def bell_fragment(request: Request) -> Response:
    session = await signed_in(request)
    if session is None:
        return html("")
    inbox = await notifications.inbox(services_of(request).read, session.username, limit=5)
    return html(renderer(request).bell(inbox))


async def mark_read(request: Request) -> Response:
    actor = await customer(request)
    assert actor.username is not None
    read = services_of(request).read
    await notifications.mark_read(read, actor.username)
    return html(renderer(request).bell(await notifications.inbox(read, actor.username, limit=5)))


# --- admin -------------------------------------------------------------------------------


async def admin_catalog(request: Request) -> Response:
    await admin_session(request)
    products, next_after, after = await products_page(request)
    forms = [FormState(spec) for spec in FORMS.values()]
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


async def admin_status_page(request: Request) -> Response:
    await admin_session(request)
    services = services_of(request)
    status = await admin_status(
        services.write, services.read, watched_consumers(), services.settings.partitions
    )
    return await page(
        request,
        "pages/admin_status.html",
        ["admin", "commands"],
        s=status,
        charts=history_charts(await history(services.read)),
    )


async def admin_status_fragment(request: Request) -> Response:
    await admin_session(request)
    services = services_of(request)
    status = await admin_status(
        services.write, services.read, watched_consumers(), services.settings.partitions
    )
    return html(renderer(request).admin_status(status))


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


async def command_form(request: Request) -> Response:
    """An admin form, or a one-button action (Cancel, Ship), through the intake."""
    command_type = request.path_params["command_type"]
    services = services_of(request)
    form = await request.form()
    spec = FORMS.get(command_type)
    if spec is None:
        return await action(request, command_type, dict(form))
    state = FormState(spec)
    try:
        document, state.values = await document_from_form(spec, form)
        command = services.intake.convert(document)
        actor = await actor_for(request)
        reply = await services.intake.submit(
            command, actor, idempotency_key=str(form.get("idempotency_key", "")) or None
        )
    except ValidationFailed as exc:
        with_errors(state, exc.errors or [])
        state.problem = exc.to_problem()
        return html(renderer(request).fragment("command_form", f=state), 422)
    except ProblemError as exc:
        state.problem = exc.to_problem()
        return html(renderer(request).fragment("command_form", f=state), exc.status)
    if reply.error is not None:
        state.problem = reply.error
        return html(renderer(request).fragment("command_form", f=state), reply.error.status)
    partition = partition_of_command(reply.command_id, services.settings.partitions)
    assert partition is not None
    stored = await services.statuses.get(partition, reply.command_id)
    fresh = FormState(spec, status=stored.view if stored else None)
    return html(renderer(request).fragment("command_form", f=fresh), reply.status_code)


ACTIONS = {"CancelOrder", "ShipOrder"}


async def action(request: Request, command_type: str, form: dict[str, Any]) -> Response:
    if command_type not in ACTIONS:
        raise NotFound("No such form")
    services = services_of(request)
    document = {"type": command_type, "order_id": str(form.get("order_id", ""))}
    if command_type == "CancelOrder" and form.get("reason"):
        document["reason"] = str(form["reason"])
    try:
        command = services.intake.convert(document)
        reply = await services.intake.submit(
            command,
            await actor_for(request),
            idempotency_key=str(form.get("idempotency_key", "")) or None,
        )
        failure = reply.error
    except ProblemError as exc:
        failure = exc.to_problem()
    if failure is not None:
        return html(renderer(request).fragment("flash", problem=failure), failure.status)
    label = "Cancelled" if command_type == "CancelOrder" else "Shipped"
    return html(renderer(request).fragment("flash", message=f"{label} {document['order_id'][-8:]}"))


routes: list[BaseRoute] = [
    Route("/", catalog_page),
    Route("/fragments/catalog", catalog_rows),
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login_form, methods=["POST"]),
    Route("/logout", logout_form, methods=["POST"]),
    Route("/orders", orders_page),
    Route("/fragments/orders", order_rows),
    Route("/orders/{order_id}", order_page),
    Route("/fragments/orders/{order_id}", order_fragment),
    Route("/checkout", checkout_page),
    Route("/ui/cart", add_to_cart, methods=["POST"]),
    Route("/ui/cart/clear", clear_cart, methods=["POST"]),
    Route("/ui/orders", place_order, methods=["POST"]),
    Route("/commands/{command_id}", command_page),
    Route("/fragments/commands/{command_id}", command_fragment),
    Route("/notifications", notifications_page),
    Route("/fragments/bell", bell_fragment),
    Route("/ui/notifications/read", mark_read, methods=["POST"]),
    Route("/admin/catalog", admin_catalog),
    Route("/admin/orders", admin_orders),
    Route("/admin/status", admin_status_page),
    Route("/fragments/admin/status", admin_status_fragment),
    Route("/admin/sales", admin_sales_page),
    Route("/fragments/admin/sales", admin_sales_fragment),
    Route("/ui/commands/{command_type}", command_form, methods=["POST"]),
]
