"""Every page, as each role (anonymous, a shopper, an admin): it shows only the controls the
role may use, it fits a phone with its main action in reach, axe-core finds nothing serious
at either size, and a refused action reads as words beside its control."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.conftest import Stack
from tests.e2e.helpers_pages import (
    DESKTOP,
    NOT_PROBED,
    PHONE,
    SIZES,
    Shop,
    axe_violations,
    controls,
    pages_for,
    refused,
    sideways_overflow,
    wider_than_the_page,
)
from tests.e2e.helpers_storefront import ApiClient, wait_live

pytest_plugins = ["tests.e2e.fixtures_storefront"]
pytestmark = pytest.mark.usefixtures("patient_expect")

NewContext = Callable[..., BrowserContext]
ROLES = ("anonymous", "alice", "admin")
ITEM = re.compile(r"^/(orders|commands)/[^/?]+")
"""One order's or one command's page: the walk follows one link of each kind."""


@pytest.fixture
def shop(api: Callable[[str], ApiClient], admin_api: ApiClient, prefix: str) -> Shop:
    """A product, one of alice's orders of it (confirmed), and one unit of it in her cart."""
    sku = admin_api.create_product(f"{prefix}-WALK", stock=100)
    alice = api("alice")
    placed = alice.command(
        {"type": "PlaceOrder", "lines": [{"sku": sku, "quantity": 1}], "card_number": "4242" * 4}
    )
    assert alice.finished(placed["command_id"])["status"] == "succeeded"
    order = alice.order_with(sku)
    added = alice.http.post(
        "/ui/cart", data={"sku": sku, "quantity": "1"}, headers={"X-CSRF-Token": alice.csrf}
    )
    assert added.status_code == 200, added.text
    return Shop(order["order_id"], placed["command_id"])


def signed_in(new_context: NewContext, role: str, **options: object) -> BrowserContext:
    return new_context(None if role == "anonymous" else role, **options)


def visit(page: Page, path: str) -> None:
    reply = page.goto(path)
    assert reply is not None and reply.status == 200, f"{path}: {reply and reply.status}"
    wait_live(page)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_shown_only_what_it_may_do(
    new_context: NewContext, stack: Stack, shop: Shop, role: str
) -> None:
    """Every visible link and button of every page, sent as the viewer: none is refused."""
    context = signed_in(new_context, role)
    page = context.new_page()
    probed: dict[tuple[str, str], str] = {}
    refusals = []
    for walked in pages_for(role, shop):
        visit(page, walked.path)
        for control in controls(page):
            kind, url = control["kind"], control["url"]
            pattern = (kind, ITEM.sub(r"/\1/*", url))
            if url in NOT_PROBED or pattern in probed:
                continue
            probed[pattern] = url
            refusal = refused(context, stack.base_url, control)
            if refusal:
                refusals.append(f"{walked.path}: {control['text']!r} ({kind} {url}): {refusal}")
    assert not refusals, "\n".join(refusals)
    sent = {url for kind, url in probed if kind == "post"}
    expected = {
        "anonymous": set(),
        "alice": {"/ui/cart", "/ui/orders", "/ui/commands/CancelOrder"},
        "admin": {"/ui/commands/ShipOrder", "/ui/commands/CreateProduct"},
    }[role]
    assert expected <= sent, f"{role} was not shown {expected - sent}"
    if role != "admin":
        assert "/ui/commands/ShipOrder" not in sent


@pytest.mark.parametrize("role", ROLES)
def test_the_nav_leads_only_to_walked_pages(new_context: NewContext, shop: Shop, role: str) -> None:
    """The walks above and below cover every page the header links to."""
    page = signed_in(new_context, role).new_page()
    visit(page, "/")
    linked = page.eval_on_selector_all("header a[href]", "(links) => links.map((a) => a.pathname)")
    walked = {ITEM.sub(r"/\1/*", v.path) for v in pages_for(role, shop)}
    assert set(linked) <= walked, set(linked) - walked


@pytest.mark.parametrize("role", ROLES)
def test_every_page_fits_a_phone_and_passes_axe_at_both_sizes(
    new_context: NewContext, shop: Shop, role: str
) -> None:
    """At 1280x800 and 390x844: no serious or critical axe-core violation; on the phone the
    page does not scroll sideways and its main action can be tapped (nothing covers it)."""
    page = signed_in(new_context, role).new_page()
    problems: list[str] = []
    for size in SIZES:
        page.set_viewport_size({"width": size.width, "height": size.height})
        for walked in pages_for(role, shop):
            visit(page, walked.path)
            where = f"{walked.path} ({size.name})"
            problems += [f"{where}: axe {v}" for v in axe_violations(page)]
            if size is PHONE and (overflow := sideways_overflow(page)) > 0:
                wide = ", ".join(wider_than_the_page(page))
                problems.append(f"{where}: scrolls {overflow}px sideways ({wide})")
            if walked.main is not None:
                action = page.locator(walked.main).first
                expect(action).to_be_visible()
                action.scroll_into_view_if_needed()
                try:
                    action.click(trial=True, timeout=3_000)
                except Exception as exc:
                    problems.append(f"{where}: {walked.main} cannot be tapped: {exc}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", ROLES)
def test_on_a_phone_the_nav_folds_behind_a_menu_button(new_context: NewContext, role: str) -> None:
    page = signed_in(new_context, role).new_page()
    page.set_viewport_size({"width": PHONE.width, "height": PHONE.height})
    visit(page, "/")
    toggle = page.locator("button.menu-toggle")
    nav = page.locator("header nav")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(nav).to_be_hidden()
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    catalog = nav.get_by_role("link", name="Catalog", exact=True)
    expect(catalog).to_be_visible()
    catalog.click(trial=True)
    page.keyboard.press("Escape")
    expect(nav).to_be_hidden()
    expect(toggle).to_be_focused()
    page.set_viewport_size({"width": DESKTOP.width, "height": DESKTOP.height})
    expect(toggle).to_be_hidden()
    expect(nav).to_be_visible()


def test_the_skip_link_comes_first_and_the_favicon_is_served(
    new_context: NewContext, stack: Stack
) -> None:
    page = new_context("alice").new_page()
    visit(page, "/")
    page.keyboard.press("Tab")
    skip = page.locator(":focus")
    expect(skip).to_have_text("Skip to content")
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon is not None
    for path in (icon, "/favicon.ico"):
        status, body = stack.get(path)
        assert status == 200 and body.startswith(b"<svg"), (path, status)


def test_a_refused_action_reads_as_a_message_beside_its_control(
    new_context: NewContext, stack: Stack, shop: Shop
) -> None:
    """The issue's case (a shopper pressing Ship), forged into the page since the page no
    longer offers it; then a session that ended under an open page."""
    context = new_context("alice")
    page = context.new_page()
    visit(page, "/orders")
    page.evaluate(
        """(orderId) => {
          const form = document.createElement("form");
          form.setAttribute("hx-post", "/ui/commands/ShipOrder");
          form.setAttribute("hx-target", "#flash");
          form.innerHTML = '<input type="hidden" name="order_id"><button type="submit" '
            + 'data-action="forged-ship">Ship</button>';
          form.querySelector("input").value = orderId;
          document.querySelector("main").append(form);
          htmx.process(form);
        }""",
        shop.order_id,
    )
    page.locator("[data-action=forged-ship]").click()
    refusal = page.locator("form:has([data-action=forged-ship]) + .refusal")
    expect(refusal).to_have_text("Not allowed: ShipOrder needs the role admin")
    expect(refusal).to_have_attribute("role", "alert")
    expect(page.locator("main")).not_to_contain_text("{")

    visit(page, "/")
    signed_out = context.request.post("/logout", headers={"Origin": stack.base_url})
    assert signed_out.ok
    add = page.locator("button[data-action=add]").first
    add.click()
    refusal = page.locator("form:has(button[data-action=add]) + .refusal").first
    expect(refusal).to_contain_text("Sign in again")
    expect(refusal.get_by_role("link", name="Sign in again")).to_have_attribute(
        "href", "/login?next=%2F"
    )
    expect(page.locator("#cart-summary")).to_contain_text("Checkout (")
    expect(page.locator("main")).not_to_contain_text("{")
