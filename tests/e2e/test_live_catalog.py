"""The live catalog: admin changes reach an anonymous watcher without a reload, form errors
show next to their fields, and a dropped socket is re-established and re-fetched."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import BrowserContext, Page, WebSocketRoute, expect

from tests.e2e.helpers_storefront import (
    ApiClient,
    assert_not_reloaded,
    available,
    catalog_path,
    mark_page,
    open_live,
    product_row,
    wait_live,
)

pytest_plugins = ["tests.e2e.fixtures_storefront"]
pytestmark = pytest.mark.usefixtures("patient_expect")

NewContext = Callable[..., BrowserContext]


def submit_form(page: Page, form_type: str, values: dict[str, str]) -> None:
    """Fill an admin command form by its field ids and press its submit button."""
    form = page.locator(f"form[data-form={form_type}]")
    for name, value in values.items():
        form.locator(f"#{form_type}-{name}").fill(value)
    form.locator("button[type=submit]").click()


def test_anonymous_catalog_follows_an_admin_restock_without_reload(
    new_context: NewContext, admin_api: ApiClient, prefix: str
) -> None:
    """Admin restocks in the admin UI; the anonymous watcher's count changes in place."""
    sku = admin_api.create_product(f"{prefix}-MUG", stock=5)
    watcher = open_live(new_context(), catalog_path(prefix))
    expect(available(watcher, sku)).to_have_text("5")
    mark_page(watcher)

    admin = open_live(new_context("admin"), "/admin/catalog")
    submit_form(admin, "RestockProduct", {"sku": sku, "quantity": "7"})
    status = admin.locator("form[data-form=RestockProduct] [data-command-id]")
    expect(status).to_have_attribute("data-status", "succeeded")

    expect(available(watcher, sku)).to_have_text("12")
    expect(product_row(watcher, sku).locator("[data-field=sold]")).to_have_text("0")
    assert_not_reloaded(watcher)


def test_create_product_shows_field_errors_then_the_new_row_goes_live(
    new_context: NewContext, admin_api: ApiClient, prefix: str
) -> None:
    """A 422 marks the bad fields; the corrected form succeeds and the row appears live."""
    sku = f"{prefix}-NEW"
    watcher = open_live(new_context(), catalog_path(prefix))
    mark_page(watcher)
    admin = open_live(new_context("admin"), "/admin/catalog")
    form = admin.locator("form[data-form=CreateProduct]")

    with admin.expect_response(re.compile(r"/ui/commands/CreateProduct$")) as rejected:
        submit_form(
            admin,
            "CreateProduct",
            {"sku": sku.lower(), "name": "Enamel mug", "price_cents": "0", "initial_stock": "3"},
        )
    assert rejected.value.status == 422
    for name in ("sku", "price_cents"):
        field_input = form.locator(f"#CreateProduct-{name}")
        error = form.locator(f"p.field-error[data-error-for={name}]")
        expect(error).to_be_visible()
        expect(field_input).to_have_attribute("aria-invalid", "true")
        expect(field_input).to_have_attribute("aria-describedby", f"CreateProduct-{name}-error")
        expect(error).to_have_id(f"CreateProduct-{name}-error")
    for name in ("name", "initial_stock"):
        expect(form.locator(f"[data-error-for={name}]")).to_have_count(0)
        expect(form.locator(f"#CreateProduct-{name}")).not_to_have_attribute("aria-invalid", "true")
    expect(form.locator("#CreateProduct-sku")).to_have_value(sku.lower())  # input kept
    expect(form.locator("[data-command-id]")).to_have_count(0)
    expect(product_row(watcher, sku)).to_have_count(0)

    submit_form(admin, "CreateProduct", {"sku": sku, "price_cents": "15"})  # in dollars
    expect(form.locator("[data-command-id]")).to_have_attribute("data-status", "succeeded")
    expect(form.locator("[data-error-for]")).to_have_count(0)
    expect(form.locator("[aria-invalid=true]")).to_have_count(0)

    expect(product_row(watcher, sku).locator("[data-field=name]")).to_have_text("Enamel mug")
    expect(product_row(watcher, sku).locator("[data-field=price]")).to_have_text("$15.00")
    expect(available(watcher, sku)).to_have_text("3")
    assert_not_reloaded(watcher)
    assert admin_api.product(sku)["available"] == 3


@dataclass
class SocketSwitch:
    """Routes the page's /ws through Playwright so the test can drop it and refuse reconnects."""

    down: bool = False
    connections: list[WebSocketRoute] = field(default_factory=list)
    refused: int = 0

    def handle(self, socket: WebSocketRoute) -> None:
        if self.down:
            self.refused += 1
            socket.close(code=1013)  # "try again later": the page keeps retrying
            return
        socket.connect_to_server()
        self.connections.append(socket)

    def drop(self) -> None:
        """Go down and cut the current connection abnormally, as a network failure would."""
        self.down = True
        self.connections[-1].close(code=1006)


def test_badge_shows_reconnecting_and_live_regions_refetch_on_reconnect(
    new_context: NewContext, admin_api: ApiClient, prefix: str
) -> None:
    """Socket drops → "reconnecting…"; back → "live", and a change missed meanwhile shows."""
    sku = admin_api.create_product(f"{prefix}-LAMP", stock=4)
    switch = SocketSwitch()
    page = new_context().new_page()
    page.route_web_socket(re.compile(r"^ws://[^/]+/ws\?"), switch.handle)
    page.goto(catalog_path(prefix))
    wait_live(page)
    body, badge = page.locator("body"), page.locator("#ws-badge")
    expect(badge).to_have_text("live")
    mark_page(page)

    admin_api.restock(sku, 1)  # pushes flow through the routed socket
    expect(available(page, sku)).to_have_text("5")

    switch.drop()
    expect(body).to_have_attribute("data-ws", "closed")
    expect(badge).to_have_text("reconnecting…")
    expect(badge).to_have_attribute("data-state", "closed")

    assert admin_api.restock(sku, 10)["available"] == 15  # projected while the page is away
    expect(badge).to_have_text("reconnecting…")
    expect(available(page, sku)).to_have_text("5")  # the push went nowhere

    switch.down = False
    expect(body).to_have_attribute("data-ws", "open", timeout=30_000)  # jittered back-off
    expect(badge).to_have_text("live")
    expect(available(page, sku)).to_have_text("15")  # the live region re-fetched itself
    assert_not_reloaded(page)
    assert len(switch.connections) == 2
