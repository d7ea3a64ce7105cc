"""The cart (app/adapters/cart.py) and checkout: the cart's lines become one PlaceOrder."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from app.domain.rules import MAX_LINE_QUANTITY
from app.kernel.errors import ProblemError, ValidationFailed
from app.kernel.messages import FieldError
from app.kernel.partitions import partition_of_command
from app.queries import catalog
from app.web.api import SKU
from app.web.auth import services_of
from app.web.bodies import read_form
from app.web.layout import page
from app.web.pages.common import customer, form_text, html, login_redirect, renderer, signed_in
from app.web.params import bounded_int


async def cart_lines(request: Request, user: str) -> list[dict[str, Any]]:
    services = services_of(request)
    cart = await services.carts.lines(user)
    products = await catalog.get_products(services.read_side, [sku for sku, _ in cart])
    return [
        {"sku": sku, "quantity": quantity, "product": product}
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


async def add_to_cart(request: Request) -> Response:
    actor = await customer(request)
    assert actor.username is not None
    form = await read_form(request)
    sku = form_text(form, "sku")
    quantity = bounded_int(form_text(form, "quantity", "1") or "1", 1, MAX_LINE_QUANTITY)
    if not SKU.fullmatch(sku) or quantity is None:
        raise ValidationFailed(
            [FieldError("$.quantity", f"A quantity from 1 to {MAX_LINE_QUANTITY}")]
        )
    count = await services_of(request).carts.add(
        actor.username, sku, quantity, at_most=MAX_LINE_QUANTITY
    )
    return html(renderer(request).fragment("cart_summary", cart_count=count, added=sku))


async def clear_cart(request: Request) -> Response:
    actor = await customer(request)
    assert actor.username is not None
    await services_of(request).carts.clear(actor.username)
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
            await services.carts.clear(actor.username)
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


routes: list[BaseRoute] = [
    Route("/checkout", checkout_page),
    Route("/ui/cart", add_to_cart, methods=["POST"]),
    Route("/ui/cart/clear", clear_cart, methods=["POST"]),
    Route("/ui/orders", place_order, methods=["POST"]),
]
