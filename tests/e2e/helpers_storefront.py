"""Helpers for the browser tests: JSON API sessions, unique products, live pages, DOM recorders.

Every test makes its own products under a unique sku prefix that sorts after the seed skus
(so a test's products never push seed products off the catalog's first page), and opens the
catalog at `/?after=<prefix>` so its own rows are on the page whatever other tests created.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from playwright.sync_api import BrowserContext, Locator, Page, expect

from app.kernel.command_status import FINAL
from tests.support.polling import eventually_sync

LIVE_TIMEOUT_MS = 15_000  # pipeline-driven expectations (projections, pushes, the process)
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
MARKER = "e2e-no-reload"


class ApiClient:
    """One user's JSON API session (own cookie jar, CSRF token) against the running stack."""

    def __init__(self, base_url: str, username: str, password: str | None = None) -> None:
        self.username = username
        self.http = httpx.Client(base_url=base_url, timeout=15.0)
        reply = self.http.post(
            "/api/session",
            json={"username": username, "password": password or f"{username}-pass"},
        )
        assert reply.status_code == 200, reply.text
        self.csrf: str = reply.json()["csrf_token"]

    def close(self) -> None:
        self.http.close()

    def command(self, document: dict[str, Any]) -> dict[str, Any]:
        """Send a command that must be accepted (200 or 202); the reply body."""
        reply = self.http.post("/api/commands", json=document, headers={"X-CSRF-Token": self.csrf})
        assert reply.status_code in (200, 202), reply.text
        body: dict[str, Any] = reply.json()
        return body

    def finished(self, command_id: str) -> dict[str, Any]:
        """Wait until a command has its final status; that status."""
        status: dict[str, Any] = eventually_sync(
            lambda: self.http.get(f"/api/commands/{command_id}").json(),
            until=lambda body: body.get("status") in FINAL,
            message=f"command {command_id} finished",
        )
        return status

    def product(self, sku: str, min_position: str | None = None) -> dict[str, Any]:
        params = {"min_position": min_position} if min_position else {}
        reply = self.http.get(f"/api/products/{sku}", params=params)
        assert reply.status_code == 200, reply.text
        assert reply.headers.get("X-Consistency") != "stale", "catalog read model lags"
        body: dict[str, Any] = reply.json()
        return body

    def projected(self, sku: str) -> dict[str, Any]:
        """Wait until the catalog read model has the product (e.g. after an async import)."""
        found: dict[str, Any] = eventually_sync(
            lambda: self.http.get(f"/api/products/{sku}"),
            until=lambda reply: reply.status_code == 200,
            message=f"{sku} in the catalog",
        ).json()
        return found

    def create_product(self, sku: str, stock: int, price_cents: int = 1_250) -> str:
        """CreateProduct (sync), then wait until the catalog read model shows it."""
        reply = self.command(
            {
                "type": "CreateProduct",
                "sku": sku,
                "name": f"Test product {sku}",
                "price_cents": price_cents,
                "initial_stock": stock,
            }
        )
        assert self.product(sku, reply["position"])["available"] == stock
        return sku

    def restock(self, sku: str, quantity: int) -> dict[str, Any]:
        """RestockProduct (sync); the product as the catalog shows it right after."""
        reply = self.command({"type": "RestockProduct", "sku": sku, "quantity": quantity})
        return self.product(sku, reply["position"])

    def rename(self, sku: str, name: str) -> dict[str, Any]:
        """RenameProduct (sync); the product as the catalog shows it right after."""
        reply = self.command({"type": "RenameProduct", "sku": sku, "name": name})
        return self.product(sku, reply["position"])

    def place_order(self, sku: str, quantity: int, card: str = GOOD_CARD) -> dict[str, Any]:
        """PlaceOrder and wait for its outcome; the order (found by its unique sku)."""
        reply = self.command(
            {
                "type": "PlaceOrder",
                "lines": [{"sku": sku, "quantity": quantity}],
                "card_number": card,
            }
        )
        assert self.finished(reply["command_id"])["status"] == "succeeded"
        return self.order_with(sku)

    def orders(self) -> list[dict[str, Any]]:
        reply = self.http.get("/api/orders", params={"limit": 500})
        assert reply.status_code == 200, reply.text
        found: list[dict[str, Any]] = reply.json()
        return found

    def order_with(self, sku: str) -> dict[str, Any]:
        """This user's one order containing `sku` (skus are unique per test)."""
        mine = eventually_sync(
            lambda: [o for o in self.orders() if any(line["sku"] == sku for line in o["lines"])],
            until=lambda found: len(found) == 1,
            message=f"{self.username}'s order of {sku} projected",
        )
        return mine[0]

    def notifications(self) -> dict[str, Any]:
        reply = self.http.get("/api/notifications")
        assert reply.status_code == 200, reply.text
        inbox: dict[str, Any] = reply.json()
        return inbox

    def inbox_with(self, order_id: str, text: str) -> dict[str, Any]:
        """This user's inbox once it holds a notification about `order_id` containing `text`."""
        inbox: dict[str, Any] = eventually_sync(
            self.notifications,
            until=lambda box: any(
                n["order_id"] == order_id and text in n["text"] for n in box["items"]
            ),
            message=f"notification '{text}' about {order_id}",
        )
        return inbox


def unique_prefix() -> str:
    """A sku prefix of this test alone; sorts after every seed sku ("ZZ-…")."""
    return f"ZZ-{secrets.token_hex(4).upper()}"


def catalog_path(prefix: str) -> str:
    """The catalog page that starts right before this test's products."""
    return f"/?after={prefix}"


def product_row(page: Page, sku: str) -> Locator:
    return page.locator(f"tr[data-sku='{sku}']")


def available(page: Page, sku: str) -> Locator:
    return page.locator(f"tr[data-sku='{sku}'] [data-field=available]")


SETTLED_JS = """() => document.body.getAttribute("data-ws") === "open" && !document.querySelector(
  "[data-live-region].htmx-request, [data-live-region] .htmx-request")"""


def wait_live(page: Page) -> None:
    """Wait until the socket is open and the live regions' re-fetch on open has been swapped in.

    Until then a re-fetched region may replace the very row a test is about to use.
    """
    expect(page.locator("body")).to_have_attribute("data-ws", "open")
    page.wait_for_function(SETTLED_JS)


def open_live(context: BrowserContext, path: str) -> Page:
    """Open a page and wait until it is live (socket open, live regions re-fetched)."""
    page = context.new_page()
    page.goto(path)
    wait_live(page)
    return page


def mark_page(page: Page) -> None:
    """Set a JS marker that a reload or navigation would wipe."""
    page.evaluate("(m) => { window.__e2eMarker = m; }", MARKER)


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("() => window.__e2eMarker") == MARKER, "the page was reloaded"


RECORD_STATUSES_JS = """(selector) => {
  const root = document.querySelector(selector);
  const seen = [];
  window.__statusHistory = seen;
  const text = (el, sel) => {
    const found = el.querySelector(sel);
    return found ? found.textContent.trim() : null;
  };
  const same = (a, b) =>
    a.status === b.status && a.label === b.label && a.progress === b.progress;
  const snap = () => root.querySelectorAll("[data-command-id]").forEach((el) => {
    const now = {
      id: el.getAttribute("data-command-id"),
      status: el.getAttribute("data-status"),
      label: text(el, ".status-label"),
      progress: text(el, "[data-field=progress]"),
    };
    const last = seen.filter((s) => s.id === now.id).pop();
    if (!last || !same(last, now)) seen.push(now);
  });
  new MutationObserver(snap).observe(
    root, {subtree: true, childList: true, attributes: true, characterData: true});
}"""


def record_statuses(page: Page, root: str) -> None:
    """Record every state a command status element under `root` goes through.

    A MutationObserver snapshots (id, data-status, label, progress text) after each change,
    so transient states (Processing…) are seen however briefly they lasted.
    """
    page.evaluate(RECORD_STATUSES_JS, root)


def status_history(page: Page, command_id: str) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = page.evaluate("() => window.__statusHistory")
    return [s for s in history if s["id"] == command_id]


def empty_cart(page: Page) -> None:
    """Start checkout from an empty cart (the cart is per user, kept on the server)."""
    page.goto("/checkout")
    clear = page.locator("form[action='/ui/cart/clear'] button")
    if clear.count():
        clear.click()  # answered in place (htmx), the nav's count with it
        expect(page.locator("#cart-count")).to_have_text("0")
    expect(page.locator("#checkout-form")).to_have_count(0)


def add_to_cart(page: Page, sku: str) -> None:
    """On a live catalog page (as a customer): press the row's "Add to order" (one unit)."""
    product_row(page, sku).locator("button[data-action=add]").click()
    expect(page.locator("#flash")).to_have_text(f"Added {sku} to your order.")


def place_order(context: BrowserContext, prefix: str, sku: str) -> tuple[Page, str]:
    """As the context's customer: one unit of `sku` through the checkout form; the page and
    the order's command id once its outcome (succeeded) is on the page."""
    page = context.new_page()
    empty_cart(page)
    page.goto(catalog_path(prefix))
    wait_live(page)
    add_to_cart(page, sku)
    page.goto("/checkout")
    wait_live(page)
    page.locator("#card_number").fill(GOOD_CARD)
    page.locator("button[data-action=place-order]").click()
    status = page.locator("#checkout [data-command-id]")
    expect(status).to_have_attribute("data-status", "succeeded")
    command_id = status.get_attribute("data-command-id")
    assert command_id
    return page, command_id
