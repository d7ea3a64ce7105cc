"""Admin forms in flight: "Processing…" and a disabled button, and a catalog import's live
progress bar through to its outcome."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect

from tests.e2e.helpers_storefront import (
    ApiClient,
    available,
    open_live,
    record_statuses,
    status_history,
)

pytest_plugins = ["tests.e2e.fixtures_storefront"]
pytestmark = pytest.mark.usefixtures("patient_expect")

NewContext = Callable[..., BrowserContext]
IMPORT_ROWS = 1_500
IMPORT_TIMEOUT_MS = 60_000


def import_csv(page: Page, rows: list[str]) -> None:
    form = page.locator("form[data-form=ImportCatalog]")
    form.locator("#ImportCatalog-csv").fill("\n".join(rows))
    form.locator("button[type=submit]").click()


def test_submit_shows_processing_and_disables_the_button_while_in_flight(
    new_context: NewContext, admin_api: ApiClient, prefix: str
) -> None:
    """While the POST is held, the button is disabled and reads "Processing…"."""
    sku = admin_api.create_product(f"{prefix}-CUP", stock=1)
    admin = open_live(new_context("admin"), f"/admin/catalog?after={prefix}")
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)  # neither continued nor fulfilled: the request stays in flight

    admin.route(re.compile(r"/ui/commands/RestockProduct$"), hold)
    form = admin.locator("form[data-form=RestockProduct]")
    button = form.locator("button[type=submit]")
    form.locator("#RestockProduct-sku").fill(sku)
    form.locator("#RestockProduct-quantity").fill("2")
    expect(button).to_be_enabled()
    expect(button.locator(".busy")).to_be_hidden()

    button.click()
    expect(button).to_be_disabled()
    expect(button.locator(".busy")).to_be_visible()
    expect(button.locator(".busy")).to_have_text("Processing…")
    expect(button.locator(".idle")).to_be_hidden()
    assert len(held) == 1, "the form post is held until now"
    expect(form.locator("[data-command-id]")).to_have_count(0)

    held[0].continue_()
    status = admin.locator("form[data-form=RestockProduct] [data-command-id]")
    expect(status).to_have_attribute("data-status", "succeeded")
    button = admin.locator("form[data-form=RestockProduct] button[type=submit]")
    expect(button).to_be_enabled()
    expect(button.locator(".busy")).to_be_hidden()
    expect(button.locator(".idle")).to_have_text("Restock")
    expect(available(admin, sku)).to_have_text("3")


def test_catalog_import_progress_bar_reaches_100_percent(
    new_context: NewContext, admin_api: ApiClient, prefix: str
) -> None:
    """1,500 pasted rows: Processing…, progress climbing to 1500/1500 (100%), succeeded."""
    admin = open_live(new_context("admin"), "/admin/catalog")
    rows = [f"{prefix}-{i:04d},Imported item {i},{100 + i},{i % 7}" for i in range(IMPORT_ROWS)]
    record_statuses(admin, "div.forms")
    import_csv(admin, rows)

    status = admin.locator("form[data-form=ImportCatalog] [data-command-id]")
    expect(status).to_have_count(1)
    command_id = status.get_attribute("data-command-id")
    assert command_id
    expect(status.locator("[data-field=progress]")).to_have_text(
        f"{IMPORT_ROWS}/{IMPORT_ROWS} (100%)", timeout=IMPORT_TIMEOUT_MS
    )
    expect(status).to_have_attribute("data-status", "succeeded")
    expect(status.locator(".status-label")).to_have_text("Succeeded")
    bar = status.locator("progress")
    expect(bar).to_have_attribute("max", str(IMPORT_ROWS))
    expect(bar).to_have_attribute("value", str(IMPORT_ROWS))
    assert bar.evaluate("(p) => p.value === p.max && p.position === 1")
    expect(status.locator(".error")).to_have_count(0)

    history = status_history(admin, command_id)
    assert history[0]["status"] in ("accepted", "processing"), history
    assert history[0]["label"] == "Processing…", history
    assert history[-1]["status"] == "succeeded", history
    done = [int(s["progress"].split("/")[0]) for s in history if s["progress"]]
    assert done == sorted(done), f"progress went backwards: {history}"
    assert done[-1] == IMPORT_ROWS
    last = admin_api.projected(f"{prefix}-{IMPORT_ROWS - 1:04d}")
    assert (last["name"], last["price_cents"], last["available"]) == (
        f"Imported item {IMPORT_ROWS - 1}",
        100 + IMPORT_ROWS - 1,
        (IMPORT_ROWS - 1) % 7,
    )


def test_catalog_import_with_duplicate_skus_fails_and_lists_the_rejected_rows(
    new_context: NewContext, admin_api: ApiClient, prefix: str
) -> None:
    """Rows whose sku already exists are rejected by path; the others are imported."""
    taken = admin_api.create_product(f"{prefix}-TAKEN", stock=9)
    rows = [
        f"{prefix}-A,First,100,1",
        f"{taken},Duplicate one,200,2",
        f"{prefix}-B,Second,300,3",
        f"{taken},Duplicate two,400,4",
        f"{prefix}-C,Third,500,5",
    ]
    admin = open_live(new_context("admin"), "/admin/catalog")
    import_csv(admin, rows)

    status = admin.locator("form[data-form=ImportCatalog] [data-command-id]")
    expect(status).to_have_attribute("data-status", "failed")
    expect(status.locator(".status-label")).to_have_text("Failed")
    expect(status.locator("[data-field=progress]")).to_have_text("5/5 (100%)")
    expect(status.locator(".error[data-error-code=import_rows_rejected]")).to_be_visible()
    rejected = status.locator("li[data-error-path]")
    expect(rejected).to_have_count(2)
    for index in (1, 3):
        row = status.locator(f"li[data-error-path='$.products[{index}]']")
        expect(row).to_be_visible()
        expect(row).to_contain_text("sku_exists")
    for sku, stock in ((f"{prefix}-A", 1), (f"{prefix}-B", 3), (f"{prefix}-C", 5)):
        assert admin_api.projected(sku)["available"] == stock
    kept = admin_api.product(taken)
    assert (kept["name"], kept["available"]) == (f"Test product {taken}", 9)


def test_a_rejected_form_focuses_its_first_invalid_field(new_context: NewContext) -> None:
    """After a 422 the keyboard focus lands on the first field marked invalid."""
    admin = open_live(new_context("admin"), "/admin/catalog")
    form = admin.locator("form[data-form=CreateProduct]")
    form.locator("#CreateProduct-sku").fill("not a sku")
    form.locator("#CreateProduct-name").fill("Focus check")
    form.locator("#CreateProduct-price_cents").fill("0")
    form.locator("button[type=submit]").click()
    expect(form.locator("[data-error-for=sku]")).to_be_visible()
    expect(form.locator("#CreateProduct-sku")).to_be_focused(timeout=5_000)
