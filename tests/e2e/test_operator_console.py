"""The operator's console (issue 15, part C): outcomes in three kinds, lag as time and
entries, pausing a consumer, filtering dead letters and acting on them in bulk, searching by
command id, order id or SKU, and every order paged with its count."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import pytest
import redis
from playwright.sync_api import BrowserContext, expect

from app.kernel import keys
from app.kernel.partitions import partition_of
from app.kernel.projection import group_name
from app.projections import keys as rm
from tests.e2e.conftest import Stack
from tests.e2e.helpers_storefront import DECLINED_CARD, ApiClient, open_live
from tests.support.polling import eventually_sync

pytest_plugins = ["tests.e2e.fixtures_storefront"]
pytestmark = pytest.mark.usefixtures("patient_expect")

NewContext = Callable[..., BrowserContext]
PARTITIONS = 4  # the stack's default
RAW_POSITION = re.compile(r"\b\d+:\d{6,}-\d+")


@pytest.fixture
def store(stack: Stack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.redis.url, decode_responses=True)
    yield client
    client.close()


def all_orders(store: redis.Redis) -> int:
    """How many orders the read side lists (its partitions' indexes added up)."""
    return sum(int(store.zcard(rm.all_orders(p))) for p in range(PARTITIONS))


def poison(store: redis.Redis, sku: str) -> None:
    """An event the catalog cannot decode, claiming to be the product's second."""
    store.xadd(
        keys.events(partition_of(sku, PARTITIONS)),
        {"t": "ProductRenamed", "a": f"product:{sku}", "v": "2", "e": '{"broken": '},
    )


def test_a_declined_card_is_a_rejection_not_a_failure_and_lag_reads_as_time(
    new_context: NewContext, api: Callable[[str], ApiClient], admin_api: ApiClient, prefix: str
) -> None:
    sku = admin_api.create_product(f"{prefix}-RJ", stock=5)
    alice = api("alice")
    reply = alice.command(
        {"type": "PlaceOrder", "lines": [{"sku": sku, "quantity": 1}], "card_number": DECLINED_CARD}
    )
    outcome = alice.finished(reply["command_id"])
    assert (outcome["status"], outcome["error"]["code"]) == ("failed", "payment_declined")

    page = open_live(new_context("admin"), "/admin/status")
    status = page.locator("#admin-status")
    expect(status.locator("dd[data-field=rejected]")).not_to_have_text("0")
    expect(status.locator(f"tr[data-outcome=rejected] a[href^='/commands/{reply['command_id']}']"))
    counts = admin_api.http.get("/api/admin/status").json()["commands"]["counts"]
    assert counts["rejected"] >= 1
    judged = counts["succeeded"] + counts["failed"]
    rate = admin_api.http.get("/api/admin/status").json()["commands"]["success_rate"]
    assert rate is None or rate == pytest.approx(counts["succeeded"] / judged, abs=0.01)
    # lag reads as entries and time, never as raw stream ids
    row = status.locator("tr[data-consumer=catalog]")
    expect(row.locator("[data-field=behind]")).to_have_text(re.compile(r"caught up|\d+(\.\d)? s"))
    assert not RAW_POSITION.search(status.inner_text())
    # the charts: bars for counts, hover targets that give the values, labelled axes
    throughput = page.locator("#admin-history figure[data-chart=throughput]")
    expect(throughput.locator("rect.bar").first).to_be_attached()
    expect(throughput.locator("[data-series=rejected]")).to_be_attached()
    hover = throughput.locator("rect.hover title").last
    expect(hover).to_have_text(re.compile(r"UTC: succeeded .*, rejected .*, failed .*"))
    expect(throughput.locator("text.tick")).not_to_have_count(0)
    metrics = admin_api.http.get("/metrics").text
    assert re.search(
        r'storefront_commands_finished_total\{outcome="rejected",type="PlaceOrder"\} [1-9]', metrics
    ), metrics


def test_pause_and_resume_a_consumer_from_the_console(
    new_context: NewContext, admin_api: ApiClient, prefix: str, stack: Stack, store: redis.Redis
) -> None:
    sku = admin_api.create_product(f"{prefix}-PAUSE", stock=2)
    page = open_live(new_context("admin"), "/admin/status")
    row = page.locator("#admin-status tr[data-consumer=low_stock]")
    try:
        row.locator("form[data-action=PauseConsumer] button").click()
        expect(page.locator("#operator-actions [data-command-id]").first).to_have_attribute(
            "data-status", "succeeded"
        )
        expect(row).to_have_attribute("data-status", "paused")
        expect(page.locator("[data-paused-banner=low_stock]")).to_contain_text("by admin")
        ready = json.loads(stack.get("/readyz")[1])
        assert ready["paused"][group_name("low_stock")].startswith("paused by admin")
        assert re.search(
            r'storefront_consumer_paused\{consumer="low_stock",kind="projection"\} 1\.0',
            admin_api.http.get("/metrics").text,
        )
        # a paused consumer reads nothing: the catalog applies a restock (it waits for it),
        # the low-stock list still has the product at 2 units
        assert store.zscore(rm.low_stock(partition_of(sku, PARTITIONS)), sku) == 2
        assert admin_api.restock(sku, 10)["available"] == 12
        assert store.zscore(rm.low_stock(partition_of(sku, PARTITIONS)), sku) == 2
        expect(row).to_have_attribute("data-status", "paused")

        row.locator("form[data-action=ResumeConsumer] button").click()
        expect(row).not_to_have_attribute("data-status", "paused")
        expect(page.locator("[data-paused-banner=low_stock]")).to_have_count(0)
        eventually_sync(
            lambda: store.zscore(rm.low_stock(partition_of(sku, PARTITIONS)), sku),
            until=lambda score: score is None,
            message="the restock applied once resumed: no longer low",
        )
        assert json.loads(stack.get("/readyz")[1])["paused"] == {}
    finally:
        store.hdel(keys.paused_consumers(), group_name("low_stock"))


def test_filter_dead_letters_and_discard_the_filtered_set(
    new_context: NewContext, admin_api: ApiClient, prefix: str, store: redis.Redis
) -> None:
    skus = [admin_api.create_product(f"{prefix}-DL{n}", stock=1) for n in range(3)]
    for sku in skus:
        poison(store, sku)
    page = open_live(new_context("admin"), "/admin/status")
    mine = page.locator(f"tr[data-letter-id][data-key^='product:{prefix}-DL']")
    expect(mine).to_have_count(3)

    page.locator("#dl-filter-consumer").fill("catalog")
    page.locator("#dl-filter-type").fill("ProductRenamed")
    page.locator("#dl-filter-error").fill("decodeerror")  # any case
    expect(page.locator("#dead-letter-filter [data-field=matching]")).to_contain_text("match")
    expect(mine.last).to_be_visible()
    page.locator("#dl-filter-type").fill("ProductRestocked")  # none of them
    expect(mine.first).to_be_hidden()
    page.locator("#dl-filter-type").fill("ProductRenamed")
    expect(mine.first).to_be_visible()

    # the discard acts on every matching letter of the consumer (a reason is needed)
    page.locator("#dl-filter-reason").fill("poison written by the test")
    page.locator("#dead-letter-filter button[data-action=discard-matching]").click()
    expect(page.locator("#operator-actions [data-command-id]").first).to_have_attribute(
        "data-status", "succeeded"
    )
    expect(mine).to_have_count(0)


def test_search_shows_an_aggregates_commands_events_and_dead_letters(
    new_context: NewContext, api: Callable[[str], ApiClient], admin_api: ApiClient, prefix: str,
    store: redis.Redis,
) -> None:  # fmt: skip
    sku = admin_api.create_product(f"{prefix}-FIND", stock=5)
    order = api("alice").place_order(sku, 1)
    page = new_context("admin").new_page()

    page.goto("/admin/status")
    page.locator("#console-search-q").fill(order["order_id"])
    page.locator("form.console-search button").click()
    result = page.locator("#search-result")
    expect(result).to_have_attribute("data-aggregate", f"order:{order['order_id']}")
    expect(result.locator("a[data-link=order]")).to_have_attribute(
        "href", f"/orders/{order['order_id']}"
    )
    expect(result.locator("tr[data-found-event=OrderPlaced]")).to_have_count(1)
    expect(result.locator("tr[data-found-event=OrderConfirmed]")).to_have_count(1)
    placed = result.locator("a[data-link=command]").first  # the PlaceOrder, with its status
    expect(placed).to_be_visible()
    command_id = placed.inner_text()

    page.goto(f"/admin/search?q={command_id}")  # by command id: the same order
    expect(result).to_have_attribute("data-aggregate", f"order:{order['order_id']}")
    expect(result.locator(f"tr[data-found-command='{command_id}'] .tag")).to_have_text("succeeded")

    poison(store, sku)
    letter_link = result.locator("tr[data-found-letter] a[data-link=dead-letters]")

    def searched_sku() -> int:  # the page is not live: search again until the letter is there
        page.goto(f"/admin/search?q={sku}")
        return letter_link.count()

    eventually_sync(searched_sku, until=lambda n: n == 1, message="the dead letter found")
    expect(result).to_have_attribute("data-aggregate", f"product:{sku}")
    expect(result.locator("tr[data-found-event=ProductCreated]")).to_have_count(1)
    expect(result.locator("tr[data-found-event=ProductRenamed]")).to_have_count(1)  # poison
    letters = admin_api.http.get("/api/admin/status").json()["dead_letters"]
    (letter,) = [d for d in letters if d["key"] == f"product:{sku}"]
    admin_api.command(
        {
            "type": "DiscardDeadLetter",
            "consumer": "catalog",
            "letter_id": letter["letter_id"],
            "reason": "written by the test",
        }
    )

    page.goto("/admin/search?q=NO-SUCH-THING")
    expect(page.locator("#search-result [data-field=nothing]")).to_be_visible()
    assert page.goto("/admin/search?q=%3Cscript%3E").status == 422  # type: ignore[union-attr]
    customer = new_context("alice").new_page()
    assert customer.goto(f"/admin/search?q={sku}").status == 403  # type: ignore[union-attr]


def test_all_orders_pages_through_every_order_with_its_count(
    new_context: NewContext, api: Callable[[str], ApiClient], admin_api: ApiClient, prefix: str,
    store: redis.Redis,
) -> None:  # fmt: skip
    sku = admin_api.create_product(f"{prefix}-MANY", stock=200)
    bob = api("bob")
    before = all_orders(store)
    wanted = max(0, 51 - before) + 2
    sent = [
        bob.command(
            {
                "type": "PlaceOrder",
                "lines": [{"sku": sku, "quantity": 1}],
                "card_number": "4242424242424242",
            }
        )["command_id"]
        for _ in range(wanted)
    ]
    for command_id in sent:
        bob.finished(command_id)
    total = eventually_sync(
        lambda: all_orders(store),
        until=lambda n: n >= before + wanted,
        message="every order projected",
    )
    page = open_live(new_context("admin"), "/admin/orders")
    count = page.locator("[data-field=order-count]")
    expect(count).to_contain_text(f"Orders 1\u201350 of {total}")
    expect(page.locator("#orders-rows tr[data-order-id]")).to_have_count(50)
    page.locator("nav.pager a[data-page=last]").click()
    pages = -(-total // 50)
    expect(count).to_contain_text(f"of {total}")
    expect(count).to_contain_text(f"page {pages} of {pages}")
    expect(page.locator("#orders-rows tr[data-order-id]")).to_have_count(total - 50 * (pages - 1))
    bad = page.goto("/admin/orders?page=abc")
    assert bad is not None and bad.status == 422
