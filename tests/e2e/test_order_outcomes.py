"""Every order outcome reaches the shopper (issue 15): confirmed, declined, rejected, cancelled
and shipped orders each land in the bell and on the notifications page; cancelling from the
order's page takes its Cancel button away and says so plainly."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.e2e.helpers_storefront import DECLINED_CARD, GOOD_CARD, ApiClient, open_live

pytest_plugins = ["tests.e2e.fixtures_storefront"]
pytestmark = pytest.mark.usefixtures("patient_expect")

NewContext = Callable[..., BrowserContext]


def failed_order(alice: ApiClient, sku: str, quantity: int, card: str) -> str:
    """A PlaceOrder that is placed and then rejected; its order id."""
    reply = alice.command(
        {"type": "PlaceOrder", "lines": [{"sku": sku, "quantity": quantity}], "card_number": card}
    )
    assert alice.finished(reply["command_id"])["status"] == "failed"
    return alice.order_with(sku)["order_id"]


def test_every_outcome_reaches_the_bell_and_the_notifications_page(
    new_context: NewContext, api: Callable[[str], ApiClient], admin_api: ApiClient, prefix: str
) -> None:
    alice = api("alice")
    shipped_sku = admin_api.create_product(f"{prefix}-SHIP", stock=5)
    cancelled_sku = admin_api.create_product(f"{prefix}-CANCEL", stock=5)
    declined_sku = admin_api.create_product(f"{prefix}-DECLINE", stock=5)
    short_sku = admin_api.create_product(f"{prefix}-SHORT", stock=1)

    shipped = alice.place_order(shipped_sku, 1)["order_id"]
    admin_api.command({"type": "ShipOrder", "order_id": shipped})
    cancelled = alice.place_order(cancelled_sku, 2)["order_id"]
    declined = failed_order(alice, declined_sku, 1, DECLINED_CARD)
    short = failed_order(alice, short_sku, 3, GOOD_CARD)

    page = open_live(new_context("alice"), f"/orders/{cancelled}")
    detail = page.locator(f"#order-detail-{cancelled}")
    cancel = page.locator("button[data-action=cancel]")
    expect(cancel.locator(".idle")).to_have_text("Cancel this order")
    cancel.click()
    expect(detail).to_have_attribute("data-status", "cancelled")
    expect(page.locator("button[data-action=cancel]")).to_have_count(0)  # gone with the order
    expect(detail.locator("[data-field=reason]")).to_have_text("Cancelled")
    step = detail.locator("li[data-step=cancelled]")
    expect(step).to_have_text(re.compile(r"Cancelled by alice\s*$"))  # not ": cancelled"

    expected = {
        shipped: f"Order …{shipped[-8:]} has shipped.",
        cancelled: f"Order …{cancelled[-8:]} was cancelled. Your payment was refunded.",
        declined: f"Order …{declined[-8:]} was declined: the card was declined. Your cart is kept.",
        short: f"Order …{short[-8:]} was rejected:",
    }
    for order_id, text in expected.items():
        alice.inbox_with(order_id, text)
    alice.inbox_with(shipped, "is confirmed")

    page.goto("/notifications")
    for order_id, text in expected.items():
        item = page.locator(f"li[data-notification='{order_id}:{text_kind(text)}']")
        expect(item).to_contain_text(text)
        expect(item.locator("a")).to_have_attribute("href", f"/orders/{order_id}")
    expect(page.locator(f"li[data-notification='{shipped}:confirmed']")).to_be_visible()
    expect(page.locator("#bell [data-field=unread]")).not_to_have_text("0")


def text_kind(text: str) -> str:
    """The notification's kind, as its id ends (`<order id>:<kind>`)."""
    for word, kind in (
        ("shipped", "shipped"),
        ("cancelled", "cancelled"),
        ("confirmed", "confirmed"),
    ):
        if word in text:
            return kind
    return "rejected"
