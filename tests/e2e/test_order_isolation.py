"""Per-user isolation of orders, and an admin shipping an order that its customer sees live."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.e2e.helpers_storefront import (
    ApiClient,
    assert_not_reloaded,
    mark_page,
    open_live,
    place_order,
)

pytest_plugins = ["tests.e2e.fixtures_storefront"]
pytestmark = pytest.mark.usefixtures("patient_expect")

NewContext = Callable[..., BrowserContext]


def test_orders_are_private_and_an_admin_ships_one_live(
    new_context: NewContext, api: Callable[[str], ApiClient], admin_api: ApiClient, prefix: str
) -> None:
    """Bob never sees alice's order; the admin sees it live and ships it; alice sees shipped."""
    sku = admin_api.create_product(f"{prefix}-BOX", stock=5)
    alice_api, bob_api = api("alice"), api("bob")
    bob_context, alice_context = new_context("bob"), new_context("alice")
    bob_orders = open_live(bob_context, "/orders")
    admin_orders = open_live(new_context("admin"), "/admin/orders")
    mark_page(bob_orders)
    mark_page(admin_orders)

    # alice orders through the UI
    _checkout, command_id = place_order(alice_context, prefix, sku)
    order_id = alice_api.order_with(sku)["order_id"]
    alice_row = f"tr[data-order-id='{order_id}']"

    # the admin's list got the row pushed (no reload), confirmed
    expect(admin_orders.locator(alice_row)).to_have_attribute("data-status", "confirmed")
    assert_not_reloaded(admin_orders)

    # bob's live page: his own later order arrives on the same socket, alice's never did
    bob_order_id = bob_api.place_order(sku, 1)["order_id"]
    expect(bob_orders.locator(f"tr[data-order-id='{bob_order_id}']")).to_have_count(1)
    expect(bob_orders.locator("body")).to_have_attribute("data-ws", "open")
    expect(bob_orders.locator(alice_row)).to_have_count(0)
    assert_not_reloaded(bob_orders)
    bob_orders.reload()
    expect(bob_orders.locator(f"tr[data-order-id='{bob_order_id}']")).to_have_count(1)
    expect(bob_orders.locator(alice_row)).to_have_count(0)

    # bob cannot open alice's order nor her command
    for path in (f"/orders/{order_id}", f"/commands/{command_id}"):
        reply = bob_orders.goto(path)
        assert reply is not None
        assert reply.status == 404, path
        expect(bob_orders.locator("[data-problem=not_found]")).to_be_visible()
        expect(bob_orders.locator(f"[data-order-id='{order_id}']")).to_have_count(0)
        expect(bob_orders.locator(f"[data-command-id='{command_id}']")).to_have_count(0)

    # alice watches her orders; the confirmation notification is already in her bell
    inbox = alice_api.inbox_with(order_id, "is confirmed")
    alice_orders = open_live(alice_context, "/orders")
    mark_page(alice_orders)
    expect(alice_orders.locator(alice_row)).to_have_attribute("data-status", "confirmed")
    unread = alice_orders.locator("#bell [data-field=unread]")
    expect(unread).to_have_text(str(inbox["unread"]))

    # the admin ships it: the admin's row, alice's row and alice's bell all follow live
    admin_orders.locator(f"{alice_row} button[data-action=ship]").click()
    expect(admin_orders.locator("#flash")).to_have_text(f"Shipped {order_id[-8:]}")
    expect(admin_orders.locator(alice_row)).to_have_attribute("data-status", "shipped")
    expect(admin_orders.locator(f"{alice_row} button[data-action=ship]")).to_have_count(0)
    expect(alice_orders.locator(alice_row)).to_have_attribute("data-status", "shipped")
    expect(alice_orders.locator(f"{alice_row} [data-field=status]")).to_have_text("shipped")
    expect(unread).to_have_text(str(inbox["unread"] + 1))
    assert_not_reloaded(alice_orders)
    assert_not_reloaded(admin_orders)
    assert alice_api.inbox_with(order_id, "has shipped")["unread"] == inbox["unread"] + 1


def test_a_not_found_page_keeps_the_visitor_signed_in(new_context: NewContext) -> None:
    """A 404 page still shows who is signed in (and the sign-out button)."""
    page = new_context("bob").new_page()
    reply = page.goto("/orders/o-does-not-exist")
    assert reply is not None
    assert reply.status == 404
    expect(page.locator("[data-problem=not_found]")).to_be_visible()
    expect(page.locator("header .who")).to_have_text("bob", timeout=5_000)
