"""HTML pages and the htmx endpoints behind their forms.

Every page reads without JavaScript; with it, forms post through htmx and live regions
follow the WebSocket. Forms go through the same intake as the JSON API.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from app.adapters.login_throttle import TooManyAttempts
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
from app.web.api import SKU, visible_command, visible_order
from app.web.auth import actor_for, actor_of, refuse_other_sites, services_of, session_of
from app.web.bodies import MAX_FORM, read_form
from app.web.charts import history_charts
from app.web.forms import (
    FORMS,
    MAX_IMPORT_BYTES,
    FormSpec,
    FormState,
    document_from_form,
    with_errors,
)
from app.web.layout import page
from app.web.login_tokens import (
    LOGIN_COOKIE,
    LOGIN_TOKEN_SECONDS,
    issue_login_token,
    login_token_valid,
)
from app.web.params import bounded_int
from app.web.signin import secure_cookies, set_session_cookie, sign_in
from app.web.watched import watched_consumers

PAGE_SIZE = 100
MAX_CART_QUANTITY = 100
CART_TTL_SECONDS = 30 * 24 * 3600
"""A cart left alone this long is forgotten."""
MAX_LOGIN_FORM = 8192
MAX_IMPORT_FORM = MAX_IMPORT_BYTES + MAX_FORM


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
    """A path on this site to go to after signing in (never another site's address)."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or not target.isprintable()
    ):
        return "/"
    return target


async def login_page(request: Request) -> Response:
    return await login_form_page(request, next=safe_next(request.query_params.get("next")))


async def login_form_page(
    request: Request,
    *,
    next: str,
    status_code: int = 200,
    error: str = "",
    username: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    """The login page, with a fresh pre-session token (hidden field + its cookie)."""
    services = services_of(request)
    token = issue_login_token(services.settings.secret_key, time.time())
    response = await page(
        request,
        "pages/login.html",
        ["catalog"],
        status_code=status_code,
        next=next,
        error=error,
        username=username,
        login_token=token.field,
    )
    response.headers.update(headers or {})
    response.set_cookie(
        LOGIN_COOKIE,
        token.cookie,
        max_age=LOGIN_TOKEN_SECONDS,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        path="/login",
    )
    return response


def form_text(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name, default)
    return value if isinstance(value, str) else default


async def login_form(request: Request) -> Response:
    refuse_other_sites(request)
    form = await read_form(request, MAX_LOGIN_FORM)
    username = form_text(form, "username")
    password = form_text(form, "password")
    target = safe_next(form_text(form, "next", "/"))
    services = services_of(request)
    if not login_token_valid(
        services.settings.secret_key,
        request.cookies.get(LOGIN_COOKIE),
        form_text(form, "login_token"),
        time.time(),
    ):
        return await login_form_page(
            request,
            next=target,
            status_code=403,
            error="This sign-in form has expired. Please sign in again.",
            username=username,
        )
    try:
        user = await sign_in(request, username, password)
    except TooManyAttempts as exc:
        return await login_form_page(
            request,
            next=target,
            status_code=429,
            error=f"Too many failed sign-ins. Try again in {exc.retry_after} seconds.",
            username=username,
            headers=exc.headers,
        )
    if user is None:
        return await login_form_page(
            request,
            next=target,
            status_code=401,
            error="Wrong username or password",
            username=username,
        )
    token, _session = await services.sessions.create(user.username, user.roles)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, token, user.username)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
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
    form = await read_form(request)
    sku = form_text(form, "sku")
    quantity = bounded_int(form_text(form, "quantity", "1") or "1", 1, MAX_CART_QUANTITY)
    if not SKU.fullmatch(sku) or quantity is None:
        raise ValidationFailed([FieldError("$.quantity", "A quantity from 1 to 100")])
    key = keys.ui_state("cart", actor.username)
    services = services_of(request)
    async with services.write.pipeline(transaction=False) as pipe:  # one key: one slot
        pipe.hincrby(key, sku, quantity)
        pipe.expire(key, CART_TTL_SECONDS)
        pipe.hlen(key)
        total, _, count = await pipe.execute()
    if total > MAX_CART_QUANTITY:
        await services.write.hset(key, sku, MAX_CART_QUANTITY)
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
    form = await read_form(request)
    lines = []
    for name, value in form.multi_items():
        if name.startswith("qty-") and isinstance(value, str) and value.strip() not in ("", "0"):
            lines.append({"sku": name[4:], "quantity": value.strip()})
    document = {
        "type": "PlaceOrder",
        "lines": lines,
        "card_number": form_text(form, "card_number").replace(" ", ""),
    }
    services = services_of(request)
    errors: dict[str, str] = {}
    status = None
    failure = None
    try:
        command = services.intake.convert(document)
        reply = await services.intake.submit(
            command, actor, idempotency_key=form_text(form, "idempotency_key") or None
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


async def may_send(request: Request, command_type: str) -> Actor:
    """Who sends a form's command, checked before its body (an upload, maybe) is read."""
    actor = await actor_for(request)
    registry = services_of(request).intake.registry
    if command_type not in FORMS and command_type not in ACTIONS:
        raise NotFound("No such form")
    if not actor.authenticated:
        raise Unauthenticated()
    roles = registry.spec(command_type).roles
    if roles and not roles & actor.roles:
        raise Forbidden(f"{command_type} needs the role {' or '.join(sorted(roles))}")
    return actor


async def command_form(request: Request) -> Response:
    """An admin form, or a one-button action (Cancel, Ship), through the intake."""
    command_type = request.path_params["command_type"]
    actor = await may_send(request, command_type)
    spec = FORMS.get(command_type)
    if spec is None:
        return await action(request, actor, command_type, await read_form(request))
    importing = spec.type == "ImportCatalog"
    form = await read_form(
        request, MAX_IMPORT_FORM if importing else MAX_FORM, max_files=1 if importing else 0
    )
    try:
        return await submit_form(request, actor, spec, form)
    finally:
        await form.close()  # an upload's spooled file


async def submit_form(request: Request, actor: Actor, spec: FormSpec, form: FormData) -> Response:
    """The form's command through the intake; the form again, with errors or the status."""
    services = services_of(request)
    state = FormState(spec)
    try:
        document, state.values = await document_from_form(spec, form)
        command = services.intake.convert(document)
        reply = await services.intake.submit(
            command, actor, idempotency_key=form_text(form, "idempotency_key") or None
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


async def action(request: Request, actor: Actor, command_type: str, form: FormData) -> Response:
    services = services_of(request)
    document = {"type": command_type, "order_id": form_text(form, "order_id")}
    if command_type == "CancelOrder" and form_text(form, "reason"):
        document["reason"] = form_text(form, "reason")
    try:
        command = services.intake.convert(document)
        reply = await services.intake.submit(
            command, actor, idempotency_key=form_text(form, "idempotency_key") or None
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
