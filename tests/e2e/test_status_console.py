"""The status page as a console: charts of the last 30 minutes drawn from the history the
project keeps (outcomes as bars, success rate, latency, consumer lag, sockets), pushed while an
admin watches, and each recent command linking to its waterfall."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.e2e.helpers_storefront import ApiClient, open_live

pytest_plugins = ["tests.e2e.fixtures_storefront"]
pytestmark = pytest.mark.usefixtures("patient_expect")

NewContext = Callable[..., BrowserContext]
CHARTS = ("throughput", "success", "latency", "lag", "sockets")


def test_the_status_page_charts_the_last_half_hour_and_links_commands_to_their_waterfalls(
    new_context: NewContext, admin_api: ApiClient, prefix: str, tmp_path: Path
) -> None:
    sku = admin_api.create_product(f"{prefix}-ST", stock=3)
    admin_api.restock(sku, 2)
    page = open_live(new_context("admin"), "/admin/status")
    history = page.locator("#admin-history")
    for chart in CHARTS:
        expect(history.locator(f"figure[data-chart={chart}] svg")).to_have_count(1)
    # the commands just sent are counted in their 10-s bucket, and the sockets were sampled
    expect(history.locator("figure[data-chart=throughput] rect.bar").first).to_be_attached()
    expect(
        history.locator("figure[data-chart=sockets] [data-series=sockets]")
    ).not_to_have_attribute("data-last", "")
    expect(history.locator("figure[data-chart=success] [data-series=succeeded]")).to_have_attribute(
        "data-last", re.compile(r"^\d+(\.\d+)?$")
    )
    recent = page.locator("#admin-status a[href$='#waterfall']").first
    expect(recent).to_be_visible()
    shot = tmp_path / "status.png"
    page.screenshot(path=str(shot), full_page=True)
    keep = os.environ.get("SCREENSHOTS_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "status.png")


def test_a_refresh_of_the_status_page_replaces_each_section_once(new_context: NewContext) -> None:
    """The live region's refresh (on every socket open) swaps the status and the operator
    console in place: neither is appended a second time."""
    page = open_live(new_context("admin"), "/admin/status")
    for _ in range(2):
        with page.expect_response(lambda r: "/fragments/admin/status" in r.url):
            page.evaluate(
                "htmx.trigger(document.querySelector(\"[hx-get='/fragments/admin/status']\"),"
                " 'sf:refresh')"
            )
        expect(page.locator("#admin-status")).to_have_count(1)
        expect(page.locator("#operator-console")).to_have_count(1)
        expect(page.locator("#admin-history")).to_have_count(1)
