"""Checkout that respects the shopper (issue 15): the cart survives a rejection and empties on
success, the nav's count follows every add, clear and order live, a sold-out product cannot be
added, the checkout shows totals and warns before ordering past the stock, the confirmation
names the order, and focus stays where the shopper works."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.helpers_storefront import (
    DECLINED_CARD,
    GOOD_CARD,
    ApiClient,
    add_to_cart,
    catalog_path,
    empty_cart,
    open_live,
    product_row,
    wait_live,
)

pytest_plugins = ["tests.e2e.fixtures_storefront"]
pytestmark = pytest.mark.usefixtures("patient_expect")

NewContext = Callable[..., BrowserContext]


def shop(context: BrowserContext, prefix: str, *skus: str) -> Page:
    """As the context's customer: an empty cart, then one of each sku added from the catalog."""
    page = context.new_page()
    empty_cart(page)
    page.goto(catalog_path(prefix))
    wait_live(page)
    for count, sku in enumerate(skus, start=1):
        add_to_cart(page, sku)
        expect(page.locator("#cart-count")).to_have_text(str(count))  # live, no reload
    return page


def pay(page: Page, card: str) -> None:
    page.locator("#card_number").fill(card)
    page.locator("button[data-action=place-order]").click()


def test_a_declined_order_keeps_the_cart_and_a_confirmed_one_empties_it(
    new_context: NewContext, api: Callable[[str], ApiClient], admin_api: ApiClient, prefix: str
) -> None:
    sku = admin_api.create_product(f"{prefix}-CUP", stock=5, price_cents=1_250)
    page = shop(new_context("alice"), prefix, sku)
    page.goto("/checkout")
    wait_live(page)
    page.locator(f"input[name='qty-{sku}']").fill("2")

    pay(page, DECLINED_CARD)
    status = page.locator("#checkout [data-command-id]")
    expect(status).to_have_attribute("data-status", "failed")
    expect(status.locator(".error")).to_have_text("The card was declined")  # said once
    expect(page.locator(".confirmation")).to_be_focused()
    order_id = api("alice").order_with(sku)["order_id"]
    expect(page.locator(".confirmation [data-field=order-link]").first).to_have_attribute(
        "href", f"/orders/{order_id}"
    )
    expect(page.locator("#cart-count")).to_have_text("1")  # the cart is still there…

    status.locator("a[href='/checkout']").click()  # …to try another card
    wait_live(page)
    expect(page.locator(f"#checkout-form input[name='qty-{sku}']")).to_have_value("2")
    pay(page, GOOD_CARD)
    status = page.locator("#checkout [data-command-id]")
    expect(status).to_have_attribute("data-status", "succeeded")
    expect(page.locator("#cart-count")).to_have_text("0")  # emptied on success, pushed
    confirmation = page.locator(".confirmation")
    expect(confirmation.locator("[data-field=order-total]")).to_have_text("$25.00")
    confirmed = [o for o in api("alice").orders() if o["status"] == "confirmed"]
    (order,) = [o for o in confirmed if o["lines"][0]["sku"] == sku]
    link = confirmation.locator("h2 [data-field=order-link]")
    expect(link).to_have_text(f"…{order['order_id'][-8:]}")
    link.click()
    expect(page).to_have_url(re.compile(f"/orders/{order['order_id']}$"))
    timeline = page.locator("ol.timeline")
    expect(timeline.locator("li[data-step=placed]")).to_contain_text("total $25.00")
    expect(timeline).not_to_contain_text("cents")


def test_the_cart_empties_even_when_the_tab_that_ordered_was_closed(
    new_context: NewContext, api: Callable[[str], ApiClient], admin_api: ApiClient, prefix: str
) -> None:
    sku = admin_api.create_product(f"{prefix}-GONE", stock=3)
    context = new_context("alice")
    page = shop(context, prefix, sku)
    page.goto("/checkout")
    wait_live(page)
    page.route(re.compile(r"/ui/cart/count$"), lambda route: route.abort())  # never settles
    with page.expect_response(re.compile(r"/ui/orders$")) as answer:
        pay(page, GOOD_CARD)
    command_id = re.search(r'data-command-id="([^"]+)"', answer.value.text())
    assert command_id
    page.close()  # before the outcome is pushed to it
    assert api("alice").finished(command_id.group(1))["status"] == "succeeded"
    again = open_live(context, "/checkout")
    expect(again.locator("#cart-count")).to_have_text("0")
    expect(again.locator("#checkout-form")).to_have_count(0)


def test_emptying_the_cart_updates_the_count_in_place(
    new_context: NewContext, admin_api: ApiClient, prefix: str
) -> None:
    first = admin_api.create_product(f"{prefix}-A", stock=3)
    second = admin_api.create_product(f"{prefix}-B", stock=3)
    page = shop(new_context("alice"), prefix, first, second)
    page.goto("/checkout")
    wait_live(page)
    page.evaluate("() => { window.__stay = true; }")
    page.locator("button[data-action=empty-cart]").click()
    expect(page.locator("#cart-count")).to_have_text("0")
    expect(page.locator("#checkout-form")).to_have_count(0)
    assert page.evaluate("() => window.__stay === true"), "answered in place, not reloaded"


def test_a_sold_out_product_cannot_be_added_and_comes_back_live(
    new_context: NewContext, api: Callable[[str], ApiClient], admin_api: ApiClient, prefix: str
) -> None:
    sku = admin_api.create_product(f"{prefix}-LAST", stock=1)
    page = open_live(new_context("alice"), catalog_path(prefix))
    button = product_row(page, sku).locator("button[data-action=add]")
    expect(button).to_be_enabled()

    api("bob").place_order(sku, 1)  # the last one goes to someone else
    expect(button).to_be_disabled()
    expect(button).to_have_text("Sold out")

    # the server refuses it too (a page that had not caught up yet)
    button.evaluate("(b) => { b.disabled = false; }")
    button.click()
    expect(page.locator("#flash .error[data-error-code=insufficient_stock]")).to_contain_text(
        "is sold out"
    )
    expect(page.locator("#cart-count")).to_have_text("0")

    admin_api.restock(sku, 2)
    expect(button).to_be_enabled()
    expect(button).to_have_text("Add to order")


def test_checkout_totals_and_a_warning_before_ordering_past_the_stock(
    new_context: NewContext, api: Callable[[str], ApiClient], admin_api: ApiClient, prefix: str
) -> None:
    tea = admin_api.create_product(f"{prefix}-TEA", stock=2, price_cents=350)
    mug = admin_api.create_product(f"{prefix}-MUG", stock=9, price_cents=1_200)
    page = shop(new_context("alice"), prefix, tea, mug)
    page.goto("/checkout")
    wait_live(page)
    row = page.locator(f"#checkout-form tr[data-sku='{mug}']")
    expect(row.locator("[data-field=line-total]")).to_have_text("$12.00")
    expect(page.locator("tfoot [data-field=order-total]")).to_have_text("$15.50")

    page.locator(f"input[name='qty-{tea}']").fill("3")
    pay(page, GOOD_CARD)
    warning = page.locator(f"[data-warning-for='{tea}']")
    expect(warning).to_have_text("Only 2 available: an order for 3 would be rejected.")
    expect(page.locator(f"input[name='qty-{tea}']")).to_be_focused()
    expect(page.locator("tfoot [data-field=order-total]")).to_have_text("$22.50")
    expect(page.locator("#card_number")).to_have_value(GOOD_CARD)  # kept as typed
    expect(page.locator("#checkout [data-command-id]")).to_have_count(0)  # nothing placed

    page.locator(f"input[name='qty-{tea}']").fill("2")
    page.locator("button[data-action=place-order]").click()
    status = page.locator("#checkout [data-command-id]")
    expect(status).to_have_attribute("data-status", "succeeded")
    expect(page.locator(".confirmation [data-field=order-total]")).to_have_text("$19.00")
    order = api("alice").order_with(tea)  # the only order of it: the warning placed none
    assert sorted((line["sku"], line["quantity"]) for line in order["lines"]) == [
        (mug, 1),
        (tea, 2),
    ]


def test_focus_stays_on_add_to_order_and_the_message_can_be_dismissed(
    new_context: NewContext, admin_api: ApiClient, prefix: str
) -> None:
    sku = admin_api.create_product(f"{prefix}-KEY", stock=4)
    context = new_context("alice")
    empty_cart(context.new_page())
    page = open_live(context, catalog_path(prefix))
    button = product_row(page, sku).locator("button[data-action=add]")
    button.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#flash")).to_have_text(f"Added {sku} to your order.")
    expect(button).to_be_focused()
    page.keyboard.press("Enter")  # again, from where the shopper was
    expect(page.locator("#cart-count")).to_have_text("1")  # one sku, two units
    expect(page.locator("#flash .ok")).to_have_count(1)  # replaced, not piled up
    page.locator("#flash [data-dismiss]").click()
    expect(page.locator("#flash .ok")).to_have_count(0)
