"""Click to pixel: a real PlaceOrder from the checkout page, then its command page's waterfall,
from the button press in the browser through the web, the queue, the worker's decide and
commit, the process manager and the gateway, the projections and the pushes, to the pushed
outcome painted on the page."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.e2e.helpers_storefront import ApiClient, place_order
from tests.support.polling import eventually_sync

pytest_plugins = ["tests.e2e.fixtures_storefront"]
pytestmark = pytest.mark.usefixtures("patient_expect")

NewContext = Callable[..., BrowserContext]
WANTED = (
    "request",
    "POST /ui/orders",
    "decode",
    "authorize",
    "enqueue on",
    "queue wait",
    "command worker: PlaceOrder",
    "decide PlaceOrder",
    "commit PlaceOrder",
    "fulfilment: OrderPlaced",
    "fulfilment reserve",
    "gateway charge",
    "commit ConfirmOrder",
    "projection orders",
    "projection catalog",
    "push commands",
    "swap succeeded",
)
"""Bars a placed order's waterfall shows: the page's, the web's, the worker's, the process
manager's (and its gateway call), the projections' and the pushes'."""
BARS_JS = """() => Array.from(document.querySelectorAll("#waterfall tr[data-bar]")).map((row) => ({
  label: row.getAttribute("data-bar"),
  lane: row.getAttribute("data-lane"),
  start: parseFloat(row.getAttribute("data-start-ms")),
  duration: parseFloat(row.getAttribute("data-duration-ms")),
}))"""


def labelled(bars: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [bar for bar in bars if bar["label"].startswith(prefix)]


def test_the_waterfall_of_a_placed_order_runs_from_the_click_to_the_pixel(
    new_context: NewContext, admin_api: ApiClient, prefix: str, tmp_path: Path
) -> None:
    sku = admin_api.create_product(f"{prefix}-WF", stock=5)
    context = new_context("alice")
    _checkout, command_id = place_order(context, prefix, sku)

    page = context.new_page()
    page.goto(f"/commands/{command_id}")
    waterfall = page.locator("#waterfall")
    expect(waterfall).to_have_attribute("data-from-click", "true")  # the page's report is in

    def drawn() -> list[dict[str, Any]]:  # each process writes its spans within 0.25 s
        page.reload()
        found: list[dict[str, Any]] = page.evaluate(BARS_JS)
        return found

    bars = eventually_sync(
        drawn,
        until=lambda found: all(labelled(found, wanted) for wanted in WANTED),
        timeout=15,
        interval=0.3,
        message="every step of the order in its waterfall",
    )

    click = bars[0]
    assert click["label"] == "click Place order" and click["lane"] == "browser", bars[0]
    assert click["start"] == 0
    pixel = float(waterfall.locator("[data-field=pixel-ms]").inner_text().split()[0])
    total = float(waterfall.locator("[data-field=total-ms]").inner_text().split()[0])
    assert pixel == pytest.approx(click["duration"], abs=0.2) and pixel <= total
    for wanted in WANTED:
        assert labelled(bars, wanted), f"no {wanted!r} bar among {[b['label'] for b in bars]}"
    steps = {
        wanted: labelled(bars, wanted)[0] for wanted in ("POST /ui/orders", "commit PlaceOrder")
    }
    assert 0 < steps["POST /ui/orders"]["start"] < steps["commit PlaceOrder"]["start"]
    swaps = labelled(bars, "swap ")
    assert len(swaps) >= 2, swaps  # the form's answer, then each pushed status
    swap = swaps[-1]
    assert swap["label"] == "swap succeeded"
    pushes = labelled(bars, "push commands")
    assert min(p["start"] for p in pushes) < swap["start"] + swap["duration"]
    assert swap["start"] + swap["duration"] == pytest.approx(pixel, abs=0.2)  # the last pixel
    assert all(0 <= bar["start"] <= total and bar["duration"] >= 0 for bar in bars)
    assert page.locator("#waterfall svg.wf-bar rect").count() == len(bars)

    shot = tmp_path / "waterfall.png"
    page.screenshot(path=str(shot), full_page=True)
    keep = os.environ.get("SCREENSHOTS_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "waterfall.png")
