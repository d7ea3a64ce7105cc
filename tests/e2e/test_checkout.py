"""Checkout in the browser: Processing… then the pushed outcome, a watcher's stock following
along, a declined card's reason, and a Luhn-invalid card stopped at the field."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import APIResponse, BrowserContext, Page, Route, expect

from tests.e2e.helpers_storefront import (
    DECLINED_CARD,
    GOOD_CARD,
    ApiClient,
    add_to_cart,
    assert_not_reloaded,
    available,
    catalog_path,
    empty_cart,
    mark_page,
    open_live,
    product_row,
    record_statuses,
    status_history,
    wait_live,
)

pytest_plugins = ["tests.e2e.fixtures_storefront"]
pytestmark = pytest.mark.usefixtures("patient_expect")

NewContext = Callable[..., BrowserContext]


def fill_cart(context: BrowserContext, prefix: str, sku: str, quantity: int) -> Page:
    """As the context's customer: a cart of just `sku`, its quantity set at checkout."""
    page = context.new_page()
    empty_cart(page)
    page.goto(catalog_path(prefix))
    wait_live(page)
    add_to_cart(page, sku)
    expect(page.locator("#cart-summary")).to_have_text("Checkout (1)")
    page.goto("/checkout")
    wait_live(page)
    expect(page.locator("#checkout-form tr[data-sku]")).to_have_count(1)
    quantity_input = page.locator(f"#checkout-form input[name='qty-{sku}']")
    expect(quantity_input).to_have_value("1")
    quantity_input.fill(str(quantity))
    return page


def pay(page: Page, card: str) -> None:
    page.locator("#card_number").fill(card)
    page.locator("button[data-action=place-order]").click()


def test_order_shows_processing_then_confirmed_while_a_watcher_sees_stock_drop(
    new_context: NewContext, admin_api: ApiClient, prefix: str
) -> None:
    """Good card: Processing… then "Order confirmed" with its steps; the watcher sees 10 → 7."""
    sku = admin_api.create_product(f"{prefix}-TEE", stock=10)
    watcher = open_live(new_context(), catalog_path(prefix))
    expect(available(watcher, sku)).to_have_text("10")
    mark_page(watcher)
    checkout = fill_cart(new_context("alice"), prefix, sku, 3)
    mark_page(checkout)
    record_statuses(checkout, "main")

    pay(checkout, GOOD_CARD)
    status = checkout.locator("#checkout [data-command-id]")
    expect(status).to_have_attribute("data-status", "succeeded", timeout=5_000)
    expect(status.locator(".status-label")).to_have_text("Order confirmed")
    expect(status.locator("li[data-step=stock_reserved]")).to_be_visible()
    expect(status.locator("li[data-step=payment_captured]")).to_be_visible()
    expect(status.locator(".error")).to_have_count(0)
    command_id = status.get_attribute("data-command-id")
    assert command_id

    history = status_history(checkout, command_id)
    assert history[0]["status"] in ("accepted", "processing"), history
    assert history[0]["label"] == "Processing…", history
    assert (history[-1]["status"], history[-1]["label"]) == ("succeeded", "Order confirmed")
    assert_not_reloaded(checkout)

    expect(available(watcher, sku)).to_have_text("7")
    expect(product_row(watcher, sku).locator("[data-field=sold]")).to_have_text("3")
    assert_not_reloaded(watcher)


def test_declined_card_shows_its_reason_and_the_stock_comes_back(
    new_context: NewContext, api: Callable[[str], ApiClient], admin_api: ApiClient, prefix: str
) -> None:
    """Declined card: failed with payment_declined; the reserved units are released."""
    sku = admin_api.create_product(f"{prefix}-BAG", stock=6)
    watcher = open_live(new_context(), catalog_path(prefix))
    expect(available(watcher, sku)).to_have_text("6")
    checkout = fill_cart(new_context("alice"), prefix, sku, 2)
    record_statuses(checkout, "main")

    pay(checkout, DECLINED_CARD)
    status = checkout.locator("#checkout [data-command-id]")
    expect(status).to_have_attribute("data-status", "failed")
    expect(status.locator(".status-label")).to_have_text("Order rejected")
    expect(status.locator(".error[data-error-code=payment_declined]")).to_be_visible()
    expect(status.locator("li[data-step=stock_reserved]")).to_be_visible()  # it was taken…
    expect(status.locator("li[data-step=payment_captured]")).to_have_count(0)
    command_id = status.get_attribute("data-command-id")
    assert command_id
    assert status_history(checkout, command_id)[0]["label"] == "Processing…"

    # …and given back. A later change to the same product is projected after the release,
    # so once the watcher shows it, its count includes the release.
    renamed = admin_api.rename(sku, "Checked after a declined card")
    assert (renamed["available"], renamed["sold"]) == (6, 0)
    row = product_row(watcher, sku)
    expect(row.locator("[data-field=name]")).to_have_text("Checked after a declined card")
    expect(available(watcher, sku)).to_have_text("6")
    expect(row.locator("[data-field=sold]")).to_have_text("0")
    order = api("alice").order_with(sku)
    assert order["status"] == "rejected"


def test_luhn_invalid_card_is_a_field_error_and_places_no_order(
    new_context: NewContext, api: Callable[[str], ApiClient], admin_api: ApiClient, prefix: str
) -> None:
    """A card failing the Luhn check: 422, the error next to the card field, no order."""
    sku = admin_api.create_product(f"{prefix}-PEN", stock=8)
    checkout = fill_cart(new_context("alice"), prefix, sku, 1)

    with checkout.expect_response(re.compile(r"/ui/orders$")) as answer:
        pay(checkout, "4242424242424241")
    assert answer.value.status == 422
    error = checkout.locator("#checkout-form p.field-error[data-error-for=card_number]")
    expect(error).to_be_visible()
    expect(checkout.locator("#card_number")).to_have_attribute("aria-invalid", "true")
    expect(checkout.locator("#checkout [data-command-id]")).to_have_count(0)
    expect(checkout.locator(f"#checkout-form tr[data-sku='{sku}']")).to_have_count(1)  # kept
    expect(checkout.locator("button[data-action=place-order]")).to_be_enabled()
    assert admin_api.product(sku)["available"] == 8

    # The corrected card goes through: exactly one order exists for this sku, of one unit.
    pay(checkout, GOOD_CARD)
    status = checkout.locator("#checkout [data-command-id]")
    expect(status).to_have_attribute("data-status", "succeeded")
    expect(checkout.locator("[data-error-for=card_number]")).to_have_count(0)
    order = api("alice").order_with(sku)
    assert [(line["sku"], line["quantity"]) for line in order["lines"]] == [(sku, 1)]
    assert admin_api.restock(sku, 1)["available"] == 8  # 8 - 1 ordered + 1 restocked


def test_a_live_stock_update_keeps_the_quantity_being_typed(
    new_context: NewContext, admin_api: ApiClient, prefix: str
) -> None:
    """A customer's half-entered quantity survives someone else changing the stock."""
    sku = admin_api.create_product(f"{prefix}-INK", stock=5)
    page = open_live(new_context("alice"), catalog_path(prefix))
    quantity = product_row(page, sku).locator("input[name=quantity]")
    quantity.fill("4")
    admin_api.restock(sku, 1)
    expect(available(page, sku)).to_have_text("6")
    expect(quantity).to_have_value("4", timeout=5_000)


RECORD_PUSHES_JS = """() => {
  window.__pushes = [];
  document.addEventListener("htmx:wsBeforeMessage", (e) => window.__pushes.push(e.detail.message));
}"""
CONFIRMED_PUSHED_JS = """(id) => window.__pushes.some(
  (m) => m.includes(`data-command-id="${id}"`) && m.includes('data-status="succeeded"'))"""


def test_the_outcome_shows_even_when_the_answer_to_the_post_comes_after_the_pushes(
    new_context: NewContext, api: Callable[[str], ApiClient], admin_api: ApiClient, prefix: str
) -> None:
    """A slow answer to the checkout POST (slow network) must not freeze "Processing…"."""
    sku = admin_api.create_product(f"{prefix}-SLOW", stock=4)
    checkout = fill_cart(new_context("alice"), prefix, sku, 1)
    checkout.evaluate(RECORD_PUSHES_JS)
    answers: list[tuple[Route, APIResponse]] = []

    def answer_late(route: Route) -> None:
        answers.append((route, route.fetch()))  # the server has it; the page waits
        checkout.evaluate("() => { window.__answerHeld = true; }")

    checkout.route(re.compile(r"/ui/orders$"), answer_late)
    pay(checkout, GOOD_CARD)
    expect(checkout.locator("button[data-action=place-order]")).to_be_disabled()
    checkout.wait_for_function("() => window.__answerHeld === true")
    assert len(answers) == 1
    route, answer = answers[0]
    found = re.search(r'data-command-id="([^"]+)"', answer.text())
    assert found, answer.text()
    command_id = found.group(1)
    assert api("alice").finished(command_id)["status"] == "succeeded"
    checkout.wait_for_function(CONFIRMED_PUSHED_JS, arg=command_id)  # pushed before the answer

    route.fulfill(response=answer)
    status = checkout.locator(f"#checkout [data-command-id='{command_id}']")
    expect(status).to_have_attribute("data-status", "succeeded", timeout=5_000)
    expect(status.locator(".status-label")).to_have_text("Order confirmed")
