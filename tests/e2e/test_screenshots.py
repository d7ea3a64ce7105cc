"""The README's screenshots, made by the browser: the catalog, checkout, the confirmation, My
orders and the status page, on a desktop (1280 x 800) and a phone (390 x 844).

Every run takes them (into a temporary directory), so the pages they show are exercised at
both sizes. `STOREFRONT_SCREENSHOTS=1` also copies them to docs/screenshots/ (commit them);
any other value names the directory to copy them to. The default run leaves the repo alone.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.helpers_pages import SIZES, Size
from tests.e2e.helpers_storefront import (
    GOOD_CARD,
    ApiClient,
    add_to_cart,
    catalog_path,
    empty_cart,
    wait_live,
)

pytest_plugins = ["tests.e2e.fixtures_storefront"]
pytestmark = pytest.mark.usefixtures("patient_expect")

NewContext = Callable[..., BrowserContext]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SHOWN = ("catalog", "checkout", "confirmation", "my-orders", "status")


def png_size(path: Path) -> tuple[int, int]:
    """A PNG's width and height, from its IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def shoot(page: Page, path: str, out: Path, name: str, size: Size) -> None:
    page.set_viewport_size({"width": size.width, "height": size.height})
    if path:
        page.goto(path)
        wait_live(page)
    page.screenshot(path=out / f"{name}-{size.name}.png", animations="disabled", caret="initial")


def checkout(page: Page, prefix: str, sku: str) -> None:
    """A cart of one `sku`, filled on the desktop layout (the cart is kept on the server)."""
    page.set_viewport_size({"width": SIZES[0].width, "height": SIZES[0].height})
    empty_cart(page)
    page.goto(catalog_path(prefix))
    wait_live(page)
    add_to_cart(page, sku)


def test_screenshots_of_the_main_pages_at_both_sizes(
    new_context: NewContext, admin_api: ApiClient, prefix: str, tmp_path: Path
) -> None:
    sku = f"{prefix}-MUG"
    admin_api.command(
        {
            "type": "CreateProduct",
            "sku": sku,
            "name": "Enamel camping mug",
            "price_cents": 1_800,
            "initial_stock": 500,
        }
    )
    admin_api.projected(sku)
    shopper = new_context("alice").new_page()
    admin = new_context("admin").new_page()
    for size in SIZES:
        shoot(shopper, "/", tmp_path, "catalog", size)
        checkout(shopper, prefix, sku)
        shoot(shopper, "/checkout", tmp_path, "checkout", size)
        shopper.locator("#card_number").fill(GOOD_CARD)
        shopper.locator("button[data-action=place-order]").click()
        outcome = shopper.locator("#checkout [data-command-id]")
        expect(outcome).to_have_attribute("data-status", "succeeded")
        shoot(shopper, "", tmp_path, "confirmation", size)
        shoot(shopper, "/orders", tmp_path, "my-orders", size)
        shoot(admin, "/admin/status", tmp_path, "status", size)

    for name in SHOWN:
        for size in SIZES:
            assert png_size(tmp_path / f"{name}-{size.name}.png") == (size.width, size.height)
    wanted = os.environ.get("STOREFRONT_SCREENSHOTS", "")
    if wanted:
        target = DOCS if wanted == "1" else Path(wanted)
        target.mkdir(parents=True, exist_ok=True)
        for made in sorted(tmp_path.glob("*.png")):
            shutil.copyfile(made, target / made.name)
