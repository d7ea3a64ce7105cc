from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import BrowserContext, expect


def test_the_catalog_page_goes_live(new_context: Callable[..., BrowserContext]) -> None:
    page = new_context().new_page()
    page.goto("/")
    expect(page.locator("body")).to_have_attribute("data-ws", "open")
    expect(page.locator("[data-sku='LAMP-01'] [data-field=available]")).to_be_visible()
