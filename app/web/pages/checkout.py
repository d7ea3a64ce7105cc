"""The cart (app/adapters/cart.py, app/web/cart.py) and checkout: the cart's lines become one
PlaceOrder. Every answer that changes the cart carries the nav's count (`#cart-count`, out of
band); the order's final status, pushed, makes the page fetch it again."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from app.domain.rules import MAX_LINE_QUANTITY
from app.kernel.errors import ProblemError, ValidationFailed, problem
from app.kernel.messages import FieldError, Problem
from app.kernel.partitions import base_of_command, partition_of_command
from app.queries import catalog
from app.queries.catalog import ProductView
from app.web.api import SKU
from app.web.auth import services_of
from app.web.bodies import read_form
from app.web.cart import current_count, current_lines
from app.web.layout import page
from app.web.pages.common import customer, form_text, html, login_redirect, renderer, signed_in
from app.web.params import bounded_int

SHORT_ACCEPTED = "short_accepted"
"""The form field naming the lines the shopper was warned about (sku:quantity, …)."""


@dataclass(frozen=True)
class CheckoutLine:
    sku: str
    quantity: int
    product: ProductView | None

    @property
    def total_cents(self) -> int | None:
        return self.quantity * self.product.price_cents if self.product else None

    @property
    def short(self) -> bool:
        """More than the catalog shows available: the order would be rejected."""
        return self.product is not None and self.quantity > self.product.available


@dataclass(frozen=True)
class Placed:
    """The order a checkout placed, as its confirmation names it."""

    order_id: str
    total_cents: int


def order_total(lines: list[CheckoutLine]) -> int:
    return sum(line.total_cents or 0 for line in lines)


def warned(lines: list[CheckoutLine]) -> str:
    """The short lines as the form carries them once the shopper has seen the warning."""
    return ",".join(f"{line.sku}:{line.quantity}" for line in lines if line.short)


async def checkout_lines(request: Request, quantities: list[tuple[str, int]]) -> list[CheckoutLine]:
    read = services_of(request).read_side
    products = await catalog.get_products(read, [s for s, _ in quantities])
    return [
        CheckoutLine(sku, quantity, product)
        for (sku, quantity), product in zip(quantities, products, strict=True)
    ]


async def cart_lines(request: Request, user: str) -> list[CheckoutLine]:
    return await checkout_lines(request, await current_lines(services_of(request), user))


def result(
    request: Request, lines: list[CheckoutLine], code: int = 200, **context: object
) -> Response:
    """The checkout region, and the nav's count out of band (the cart is `lines` now)."""
    context = {"status": None, "problem": None, "errors": {}, "placed": None, **context}
    render = renderer(request)
    body = render.fragment(
        "checkout_result",
        lines=lines,
        total_cents=order_total(lines),
        short=warned(lines),
        short_field=SHORT_ACCEPTED,
        **context,
    )
    return html(body + render.fragment("cart_count", cart_count=len(lines), oob=True), code)


def short_warning(request: Request, lines: list[CheckoutLine]) -> Response:
    """Lines beyond the stock: their warnings in place of the lines, the card left as typed."""
    body = renderer(request).fragment(
        "checkout_lines",
        lines=lines,
        total_cents=order_total(lines),
        short=warned(lines),
        short_field=SHORT_ACCEPTED,
        errors={},
    )
    return html(body, 409, headers={"HX-Retarget": "#checkout-lines", "HX-Reswap": "outerHTML"})


async def checkout_page(request: Request) -> Response:
    session = await signed_in(request)
    if session is None:
        return login_redirect(request)
    lines = await cart_lines(request, session.username)
    return await page(
        request,
        "pages/checkout.html",
        ["catalog", "commands", "notifications"],
        lines=lines,
        total_cents=order_total(lines),
        short=warned(lines),
        errors={},
        problem=None,
        status=None,
        placed=None,
        short_field=SHORT_ACCEPTED,
    )


def refused(request: Request, problem: Problem) -> Response:
    return html(renderer(request).fragment("flash", problem=problem), problem.status)


async def add_to_cart(request: Request) -> Response:
    """One product into the cart: a message, and the nav's count. A product that cannot be
    ordered (unknown, discontinued, sold out) is refused with a readable message."""
    actor = await customer(request)
    assert actor.username is not None
    form = await read_form(request)
    sku = form_text(form, "sku")
    quantity = bounded_int(form_text(form, "quantity", "1") or "1", 1, MAX_LINE_QUANTITY)
    if not SKU.fullmatch(sku) or quantity is None:
        raise ValidationFailed(
            [FieldError("$.quantity", f"A quantity from 1 to {MAX_LINE_QUANTITY}")]
        )
    services = services_of(request)
    product = await catalog.get_product(services.read_side, sku)
    if product is None:
        text = f"There is no product {sku}."
        return refused(request, problem("unknown_product", 409, text, title=text))
    if product.status != "active":
        text = f"{product.name} is no longer sold."
        return refused(request, problem("product_discontinued", 409, text, title=text))
    if product.available <= 0:
        text = f"{product.name} is sold out."
        return refused(request, problem("insufficient_stock", 409, text, title=text))
    count = await services.carts.add(actor.username, sku, quantity, at_most=MAX_LINE_QUANTITY)
    render = renderer(request)
    message = render.fragment("flash", message=f"Added {sku} to your order.")
    return html(message + render.fragment("cart_count", cart_count=count, oob=True))


async def cart_count(request: Request) -> Response:
    """The nav's count alone (the page asks once an order's final status arrives)."""
    actor = await customer(request)
    assert actor.username is not None
    count = await current_count(services_of(request), actor.username)
    return html(renderer(request).fragment("cart_count", cart_count=count, oob=False))


async def clear_cart(request: Request) -> Response:
    actor = await customer(request)
    assert actor.username is not None
    await services_of(request).carts.clear(actor.username)
    if request.headers.get("hx-request"):
        return result(request, [])
    return RedirectResponse("/checkout", status_code=303)


def form_lines(form: FormData) -> list[tuple[str, str]]:
    """The (sku, quantity) the form sends, a line left at 0 or empty left out."""
    return [
        (name[4:], value.strip())
        for name, value in form.multi_items()
        if name.startswith("qty-") and isinstance(value, str) and value.strip() not in ("", "0")
    ]


async def place_order(request: Request) -> Response:
    """Checkout: the cart's lines with their (edited) quantities, and the card. Lines beyond
    what is available are warned about first; the same form sent again places the order."""
    actor = await customer(request)
    assert actor.username is not None
    form = await read_form(request)
    sent = form_lines(form)
    document = {
        "type": "PlaceOrder",
        "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in sent],
        "card_number": form_text(form, "card_number").replace(" ", ""),
    }
    services = services_of(request)
    try:
        command = services.intake.convert(document)
    except ValidationFailed as exc:
        errors = {e.path.removeprefix("$."): e.message for e in exc.errors or []}
        lines = await cart_lines(request, actor.username)
        return result(request, lines, 422, problem=exc.to_problem(), errors=errors)
    ordered = [(sku, int(quantity)) for sku, quantity in sent]
    lines = await checkout_lines(request, ordered)
    short = warned(lines)
    if short and short != form_text(form, SHORT_ACCEPTED):
        return short_warning(request, lines)
    try:
        reply = await services.intake.submit(
            command, actor, idempotency_key=form_text(form, "idempotency_key") or None
        )
    except ProblemError as exc:
        return result(request, lines, exc.status, problem=exc.to_problem())
    if reply.error is not None:
        return result(request, lines, reply.error.status, problem=reply.error)
    await services.carts.ordered(actor.username, reply.command_id, ordered)
    partition = partition_of_command(reply.command_id, services.settings.partitions)
    assert partition is not None
    stored = await services.statuses.get(partition, reply.command_id)
    placed = Placed(base_of_command(reply.command_id), order_total(lines))
    return result(request, lines, 202, status=stored.view if stored else None, placed=placed)


routes: list[BaseRoute] = [
    Route("/checkout", checkout_page),
    Route("/ui/cart", add_to_cart, methods=["POST"]),
    Route("/ui/cart/clear", clear_cart, methods=["POST"]),
    Route("/ui/cart/count", cart_count),
    Route("/ui/orders", place_order, methods=["POST"]),
]
