"""Helpers for the tests that walk every page: screen sizes, the pages each role sees (with
the action each is for), the controls a page shows, axe-core, and the phone's layout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, Page

AXE = Path(__file__).resolve().parents[1] / "support" / "axe" / "axe-4.14.1.min.js"
"""axe-core, vendored from its npm package (tests/support/axe/README.md)."""
BLOCKING = ("serious", "critical")
"""The impacts of an accessibility violation that fails a page."""


@dataclass(frozen=True)
class Size:
    name: str
    width: int
    height: int


DESKTOP = Size("desktop", 1280, 800)
PHONE = Size("phone", 390, 844)
SIZES = (DESKTOP, PHONE)


@dataclass(frozen=True)
class Visit:
    """A page a role opens, and the control its visit is for (None: a page for reading)."""

    path: str
    main: str | None = None


@dataclass(frozen=True)
class Shop:
    """What the walked pages show: one of alice's orders (confirmed) and its command."""

    order_id: str
    command_id: str


def pages_for(role: str, shop: Shop) -> list[Visit]:
    """Every page a role reaches from the nav, and the pages one click further (an order, a
    command); `test_the_nav_leads_only_to_walked_pages` keeps this list complete."""
    order = f"/orders/{shop.order_id}"
    command = f"/commands/{shop.command_id}"
    match role:
        case "anonymous":
            return [Visit("/", "main a[href^='/login']"), Visit("/login", "main button")]
        case "alice":
            return [
                Visit("/", "button[data-action=add]"),
                Visit("/checkout", "button[data-action=place-order]"),
                Visit("/orders", "#orders-rows a"),
                Visit(order, "button[data-action=cancel]"),
                Visit("/notifications", "button[data-action=mark-read]"),
                Visit(command),
            ]
        case "admin":
            return [
                Visit("/"),
                Visit("/admin/catalog", "#form-CreateProduct button[type=submit]"),
                Visit("/admin/orders", "button[data-action=ship]"),
                Visit("/admin/sales"),
                Visit("/admin/status", "form[data-action=RebuildProjection] button"),
                Visit("/orders"),
                Visit(order, "button[data-action=cancel]"),
                Visit("/notifications", "button[data-action=mark-read]"),
                Visit(command),
            ]
        case _:
            raise ValueError(role)


CONTROLS_JS = """() => {
  const seen = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length)
    && getComputedStyle(el).visibility !== "hidden";
  const found = [];
  document.querySelectorAll("a[href]").forEach((a) => {
    if (seen(a) && a.origin === location.origin && !a.getAttribute("href").startsWith("#")) {
      found.push({kind: "link", url: a.pathname + a.search, text: a.textContent.trim()});
    }
  });
  document.querySelectorAll("button, input[type=submit]").forEach((b) => {
    const form = b.form || b.closest("form");
    const owner = b.closest("[hx-post], [hx-put], [hx-delete], [hx-patch]") || form;
    if (!seen(b) || !owner) return;
    const url = owner.getAttribute("hx-post") || owner.getAttribute("hx-put")
      || owner.getAttribute("hx-delete") || owner.getAttribute("hx-patch")
      || (form && form.getAttribute("action"));
    if (url) found.push({kind: "post", url: new URL(url, location.href).pathname,
                         text: b.textContent.trim()});
  });
  return found;
}"""

NOT_PROBED = frozenset({"/logout", "/login"})
"""Controls not sent while walking: signing out would end the walk (any signed-in user may),
and the sign-in form checks its own pre-session token first (anyone may sign in)."""
AXE_URL = "/__tests__/axe.min.js"
"""Where a page under test finds axe-core: the browser answers it from the vendored file, so
the page's Content-Security-Policy (scripts from its own origin only) stays as it is."""


def controls(page: Page) -> list[dict[str, str]]:
    """Every visible link (same origin) and every visible button that sends a request."""
    found: list[dict[str, str]] = page.evaluate(CONTROLS_JS)
    return found


def refused(context: BrowserContext, base_url: str, control: dict[str, str]) -> str | None:
    """How the server refuses this viewer what the control leads to (None: it does not).

    A link is followed one step (a redirect to sign in is a refusal too); a form is sent
    empty, which is harmless: every endpoint checks who sends it before it reads a field.
    """
    url = control["url"]
    if control["kind"] == "link":
        reply = context.request.get(url, max_redirects=0)
        location = reply.headers.get("location", "")
        if reply.status in (301, 302, 303, 307) and urlsplit(location).path == "/login":
            return f"{reply.status} to {location}"
    else:
        reply = context.request.post(url, headers={"Origin": base_url}, max_redirects=0)
    if reply.status in (401, 403):
        return f"{reply.status} {reply.text()[:200]}"
    return None


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """The serious and critical violations axe-core finds on the page as it is now."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.route(f"**{AXE_URL}", lambda route: route.fulfill(path=AXE))
        page.add_script_tag(url=AXE_URL)
    found: list[dict[str, Any]] = page.evaluate(
        """async (blocking) => {
          const results = await axe.run(document, {resultTypes: ["violations"]});
          return results.violations
            .filter((v) => blocking.includes(v.impact))
            .map((v) => ({id: v.id, impact: v.impact, help: v.help,
                          nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" "))}));
        }""",
        list(BLOCKING),
    )
    return found


def sideways_overflow(page: Page) -> int:
    """How far the page scrolls sideways, in CSS pixels (0: it fits)."""
    overflow: int = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return overflow


def wider_than_the_page(page: Page) -> list[str]:
    """The innermost elements reaching past the page's right edge (what makes it scroll)."""
    found: list[str] = page.evaluate(
        """() => {
          const edge = document.documentElement.clientWidth;
          const clipped = (e) => {  // by a scrolling ancestor (an absolute box may escape it)
            if (["absolute", "fixed"].includes(getComputedStyle(e).position)) return false;
            for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
              if (getComputedStyle(a).overflowX !== "visible") return true;
            }
            return false;
          };
          const wide = [...document.querySelectorAll("body *")].filter(
            (e) => e.getBoundingClientRect().right > edge + 0.5 && !clipped(e));
          if (!wide.length) {  // hide parts until the overflow goes: the innermost one that ends it
            const root = document.documentElement;
            const over = () => root.scrollWidth - root.clientWidth > 0;
            let at = document.body;
            for (let found = true; found; ) {
              found = false;
              for (const child of at.children) {
                const was = child.style.display;
                child.style.display = "none";
                const gone = !over();
                child.style.display = was;
                if (gone) { at = child; found = true; break; }
              }
            }
            const classes = typeof at.className === "string" ? at.className : "";
            return [at.tagName.toLowerCase() + "." + classes + " " + at.outerHTML.slice(0, 200)];
          }
          return wide.filter((e) => !wide.some((o) => o !== e && e.contains(o))).slice(0, 5)
            .map((e) => {
              const classes = typeof e.className === "string" ? e.className.trim() : "";
              const name = e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
                + (classes ? "." + classes.split(/\\s+/).join(".") : "");
              return name + " (" + Math.round(e.getBoundingClientRect().right) + "px)";
            });
        }"""
    )
    return found
