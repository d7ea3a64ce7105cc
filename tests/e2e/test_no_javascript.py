"""Every page reads without JavaScript: server-rendered catalog, login and orders."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.e2e.conftest import Stack
from tests.e2e.helpers_storefront import ApiClient, catalog_path

pytest_plugins = ["tests.e2e.fixtures_storefront"]


@pytest.fixture
def no_js_context(browser: Browser, stack: Stack) -> Iterator[BrowserContext]:
    """A context whose pages run no script at all (htmx and app.js included)."""
    context = browser.new_context(base_url=stack.base_url, java_script_enabled=False)
    context.set_default_timeout(15_000)
    yield context
    context.close()


def test_catalog_login_and_orders_render_without_javascript(
    no_js_context: BrowserContext,
    api: Callable[[str], ApiClient],
    admin_api: ApiClient,
    prefix: str,
) -> None:
    """Read the catalog, sign in with the plain form, then read my orders and one order."""
    sku = admin_api.create_product(f"{prefix}-CAP", stock=9)
    order = api("alice").place_order(sku, 2)
    order_id = order["order_id"]
    page = no_js_context.new_page()

    page.goto(catalog_path(prefix))
    expect(page.locator("body")).to_have_attribute("data-ws", "connecting")  # no script ran
    expect(page.locator("h1")).to_have_text("Catalog")
    expect(page.locator(f"tr[data-sku='{sku}'] [data-field=available]")).to_have_text("7")
    expect(page.locator(f"tr[data-sku='{sku}'] [data-field=sold]")).to_have_text("2")

    page.goto("/login")
    expect(page.locator("h1")).to_have_text("Sign in")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-pass")
    with page.expect_navigation():
        page.click("form[action='/login'] button[type=submit]")
    expect(page.locator("header .who")).to_have_text("alice")

    page.goto("/orders")
    expect(page.locator("h1")).to_have_text("My orders")
    row = page.locator(f"tr[data-order-id='{order_id}']")
    expect(row).to_have_attribute("data-status", "confirmed")
    expect(row).to_contain_text(f"2\N{MULTIPLICATION SIGN} {sku}")
    expect(page.locator("body")).to_have_attribute("data-ws", "connecting")

    with page.expect_navigation():
        row.locator(f"a[href='/orders/{order_id}']").click()
    detail = page.locator(f"section[data-order-id='{order_id}']")
    expect(detail).to_have_attribute("data-status", "confirmed")
    for step in ("placed", "confirmed"):
        expect(detail.locator(f"li[data-step={step}]")).to_be_visible()
