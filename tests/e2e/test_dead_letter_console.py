"""The dead-letter console on the status page: a poison event is listed (masked) with the
event waiting behind it; Retry sends RetryDeadLetter (it fails again: garbage stays garbage,
and says so); Discard with a reason sends DiscardDeadLetter, the waiting event applies and
both entries leave the list — each action's status pushed live as it moves."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import msgspec
import pytest
import redis
from playwright.sync_api import BrowserContext, expect

from app.kernel import keys
from app.kernel.dead_letters import discarded
from app.kernel.partitions import partition_of
from app.kernel.projection import group_name
from tests.e2e.conftest import Stack
from tests.e2e.helpers_storefront import (
    ApiClient,
    assert_not_reloaded,
    mark_page,
    open_live,
    record_statuses,
    status_history,
)
from tests.support.polling import eventually_sync

pytest_plugins = ["tests.e2e.fixtures_storefront"]
pytestmark = pytest.mark.usefixtures("patient_expect")

NewContext = Callable[..., BrowserContext]
PARTITIONS = 4  # the stack's default
CARD = "4242424242424242"


@pytest.fixture
def store(stack: Stack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.redis.url, decode_responses=True)
    yield client
    client.close()


def poison(store: redis.Redis, sku: str) -> None:
    """An event the catalog cannot decode, claiming to be the product's second (with a card
    number in it, which the console must never show)."""
    store.xadd(
        keys.events(partition_of(sku, PARTITIONS)),
        {"t": "ProductRenamed", "a": f"product:{sku}", "v": "2", "e": f'{{"card": "{CARD}", '},
    )


DISCARD_WITHOUT_A_REASON_JS = """(key) => {
  const form = document.querySelector(
    `tr[data-letter-id][data-key="${key}"] form[data-action=discard]`);
  form.querySelector("input[name=reason]").removeAttribute("required");
  htmx.process(form);  // a form a push put in this very task is htmx's before the click
  form.querySelector("button").click();
}"""
"""Past the browser's own check to the server's, in one task: the status page pushes its
console every second and puts back one that differs from the server's (as one whose input
lost `required` does), so a click that came a push later would be stopped by the browser."""


def test_retry_and_discard_from_the_console(
    new_context: NewContext, admin_api: ApiClient, prefix: str, store: redis.Redis
) -> None:
    sku = admin_api.create_product(f"{prefix}-POISON", stock=3)
    poison(store, sku)
    admin_api.command({"type": "RenameProduct", "sku": sku, "name": "Renamed behind a poison"})

    page = open_live(new_context("admin"), "/admin/status")
    mark_page(page)
    rows = page.locator(f"tr[data-letter-id][data-key='product:{sku}']")
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-consumer", "catalog")
    expect(rows.first).to_have_attribute("data-type", "ProductRenamed")
    expect(rows.first).to_contain_text("DecodeError")
    expect(rows.nth(1)).to_contain_text("waiting behind letter")
    payload = rows.first.locator("code.payload")
    expect(payload).to_contain_text("•••")
    assert CARD not in page.content()
    assert admin_api.product(sku)["name"] != "Renamed behind a poison"  # held back

    # Retry: the command goes to the partition's owner, which tries again; it fails again
    record_statuses(page, "#operator-actions")
    rows.first.locator("form[data-action=retry] button").click()
    retried = page.locator("#operator-actions [data-command-id]").first
    expect(retried).to_have_attribute("data-status", "failed")
    expect(retried).to_contain_text("failed again")
    first = status_history(page, retried.get_attribute("data-command-id") or "")
    assert first[0]["status"] in ("accepted", "processing") and first[-1]["status"] == "failed"
    expect(rows.first.locator("td.num")).to_have_text("5")  # one more attempt, still listed
    expect(rows).to_have_count(2)

    # Discard with a reason: the waiting rename applies and both leave the list
    discard = rows.first.locator("form[data-action=discard]")
    discard.locator("input[name=reason]").fill("garbage written by hand")
    discard.locator("button").click()
    discarding = page.locator("#operator-actions [data-command-id]").first
    expect(discarding).to_have_attribute("data-status", "succeeded")
    expect(rows).to_have_count(0)
    history = status_history(page, discarding.get_attribute("data-command-id") or "")
    assert [h["status"] for h in history][-1] == "succeeded"
    assert history[0]["status"] in ("accepted", "processing"), history
    eventually_sync(
        lambda: admin_api.product(sku)["name"],
        until=lambda name: name == "Renamed behind a poison",
        message="the waiting rename applied",
    )
    journal = store.xrange(discarded(group_name("catalog")))
    records = [msgspec.json.decode(fields["e"]) for _, fields in journal]
    mine = [r for r in records if r["letter"]["fields"].get("a") == f"product:{sku}"]
    assert [(r["by"], r["reason"]) for r in mine] == [("admin", "garbage written by hand")]
    assert_not_reloaded(page)


def test_a_discard_without_a_reason_is_refused_in_place(
    new_context: NewContext, admin_api: ApiClient, prefix: str, store: redis.Redis
) -> None:
    sku = admin_api.create_product(f"{prefix}-POISON", stock=1)
    poison(store, sku)
    page = open_live(new_context("admin"), "/admin/status")
    row = page.locator(f"tr[data-letter-id][data-key='product:{sku}']")
    expect(row).to_have_count(1)
    page.evaluate(DISCARD_WITHOUT_A_REASON_JS, f"product:{sku}")
    refused = page.locator("#operator-actions .operator-problem")
    expect(refused.locator("[data-error-path='$.reason']")).to_have_count(1)
    expect(row).to_have_count(1)

    # the console's next push puts back the server's form (the scripted one lost `required`):
    # fill and click only once it has, so the click is not on a form replaced meanwhile
    reason = row.locator("form[data-action=discard] input[name=reason]")
    expect(reason).to_have_attribute("required", "")
    reason.fill("cleaning up after a test")
    row.locator("form[data-action=discard] button").click()
    expect(page.locator("#operator-actions [data-command-id]").first).to_have_attribute(
        "data-status", "succeeded"
    )
    expect(row).to_have_count(0)
