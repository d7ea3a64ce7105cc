"""The admin's forms for people (issue 15): prices in dollars, each error at its field, a
success that names what changed, import errors by row from 1, focus where the person works."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.e2e.helpers_storefront import ApiClient, open_live

pytest_plugins = ["tests.e2e.fixtures_storefront"]
pytestmark = pytest.mark.usefixtures("patient_expect")

NewContext = Callable[..., BrowserContext]


def create_form(page: Page) -> Locator:
    return page.locator("form[data-form=CreateProduct]")


def create(page: Page, sku: str, name: str, price: str) -> Locator:
    form = create_form(page)
    form.locator("#CreateProduct-sku").fill(sku)
    form.locator("#CreateProduct-name").fill(name)
    form.locator("#CreateProduct-price_cents").fill(price)
    form.locator("button[type=submit]").click()
    return create_form(page)  # the form as answered


def test_a_price_in_dollars_a_named_success_and_a_duplicate_at_its_field(
    new_context: NewContext, admin_api: ApiClient, prefix: str
) -> None:
    admin = open_live(new_context("admin"), f"/admin/catalog?after={prefix}")
    expect(create_form(admin).locator("label[for=CreateProduct-price_cents]")).to_have_text(
        "Price ($)"
    )
    sku = f"{prefix}-BOOK"

    form = create(admin, sku, "Title", "12.345")  # past the cent
    error = form.locator("[data-error-for=price_cents]")
    expect(error).to_have_text("At most two digits after the point: dollars and cents")
    expect(form.locator("#CreateProduct-price_cents")).to_be_focused()
    expect(form.locator("#CreateProduct-price_cents")).to_have_value("12.345")

    form = create(admin, sku, "Title", "abc")
    expect(form.locator("[data-error-for=price_cents]")).to_have_text(
        "Enter an amount in dollars, like 12.99"
    )

    form = create(admin, sku, "Title", "12.50")
    done = form.locator("[data-field=done]")
    expect(done).to_have_text("Created " + sku + " 'Title' (price $12.50)")
    expect(form.locator(".form-outcome")).to_be_focused()
    assert admin_api.projected(sku)["price_cents"] == 1250  # the API stays in cents
    done.locator("[data-dismiss]").click()
    expect(form.locator("[data-field=done]")).to_have_count(0)

    form = create(admin, sku, "Again", "3")
    taken = form.locator("[data-error-for=sku]")
    expect(taken).to_be_visible()
    expect(taken).to_contain_text(sku)
    expect(form.locator("#CreateProduct-sku")).to_be_focused()
    expect(form.locator("p.error[data-error-code]")).to_have_count(0)  # not again at the bottom

    change = admin.locator("form[data-form=ChangePrice]")
    change.locator("#ChangePrice-sku").fill(sku)
    change.locator("#ChangePrice-price_cents").fill("$1,000.05")
    change.locator("button[type=submit]").click()
    change = admin.locator("form[data-form=ChangePrice]")
    expect(change.locator("[data-field=done]")).to_have_text(
        f"Changed price of {sku} (new price $1,000.05)"
    )
    row = admin.locator(f"tr[data-sku='{sku}'] [data-field=price]")
    expect(row).to_have_text("$1,000.05")


def test_import_errors_give_the_rows_as_the_file_counts_them(
    new_context: NewContext, admin_api: ApiClient, prefix: str
) -> None:
    taken = admin_api.create_product(f"{prefix}-TAKEN", stock=1)
    admin = open_live(new_context("admin"), "/admin/catalog")
    form = admin.locator("form[data-form=ImportCatalog]")

    rows = [f"{prefix}-A,First,100,1", f"{prefix}-B,Second,0,1"]  # row 2: a price of 0
    form.locator("#ImportCatalog-csv").fill("\n".join(rows))
    form.locator("button[type=submit]").click()
    form = admin.locator("form[data-form=ImportCatalog]")
    invalid = form.locator("li[data-error-path='$.products[1].price_cents']")
    expect(invalid).to_contain_text("Row 2, price_cents:")

    rows = [f"{prefix}-C,Third,100,1", f"{taken},Duplicate,200,2"]  # row 2: taken
    form.locator("#ImportCatalog-csv").fill("\n".join(rows))
    form.locator("button[type=submit]").click()
    status = admin.locator("form[data-form=ImportCatalog] [data-command-id]")
    expect(status).to_have_attribute("data-status", "failed")
    expect(status.locator("li[data-error-path='$.products[1]']")).to_contain_text("Row 2:")
