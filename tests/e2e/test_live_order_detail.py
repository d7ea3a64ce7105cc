"""An order's own page follows the order live, its whole detail intact.

An order is pushed as its list row and its detail section in one message. Parsed side by side,
a table row followed by a section that holds a table breaks the section apart (the HTML parser
moves its contents out); each fragment comes in its own <template> so both arrive whole.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.e2e.helpers_storefront import ApiClient, assert_not_reloaded, mark_page, open_live

pytest_plugins = ["tests.e2e.fixtures_storefront"]
pytestmark = pytest.mark.usefixtures("patient_expect")

NewContext = Callable[..., BrowserContext]


def test_the_order_page_shows_the_shipping_live_with_its_detail_whole(
    new_context: NewContext, api: Callable[[str], ApiClient], admin_api: ApiClient, prefix: str
) -> None:
    sku = admin_api.create_product(f"{prefix}-MUG", stock=5)
    order_id = api("alice").place_order(sku, 2)["order_id"]
    page = open_live(new_context("alice"), f"/orders/{order_id}")
    mark_page(page)
    detail = page.locator(f"section#order-detail-{order_id}")
    expect(detail).to_have_attribute("data-status", "confirmed")

    admin_api.command({"type": "ShipOrder", "order_id": order_id})

    expect(detail).to_have_attribute("data-status", "shipped")
    expect(detail.locator("[data-field=status]")).to_have_text("shipped")
    expect(detail.locator("ol.timeline li[data-step=shipped]")).to_have_count(1)
    expect(detail.locator("tbody tr")).to_have_count(1)  # the order's line, inside its table
    expect(detail.locator("[data-field=card_last4]")).to_have_text("4242")
    expect(page.locator("main > ol.timeline, main > p > [data-field=card_last4]")).to_have_count(0)
    assert_not_reloaded(page)
