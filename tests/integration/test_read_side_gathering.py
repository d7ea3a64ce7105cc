"""Read models sharded by partition: the same events, projected into one Redis server and into
the 3-master Cluster, answer every gathering query exactly alike — and as one key per view
would have (each expectation below is computed from the events, not read back)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis

from app.adapters.redis_client import connect
from app.domain import orders as o
from app.domain import products as p
from app.kernel.consumer import Entry
from app.kernel.partitions import partition_of
from app.kernel.projection import ProjectionHandler
from app.kernel.read_side import ReadSide
from app.projections.catalog import CatalogProjection
from app.projections.command_log import CommandLogProjection, JournalEntry
from app.projections.low_stock import LowStockProjection
from app.projections.notifications import NotificationsProjection
from app.projections.orders import OrdersProjection
from app.projections.sales import SalesProjection
from app.projections.timeline import TimelineProjection
from app.queries import catalog, notifications, orders, sales
from app.queries.admin_status import command_stats
from tests.support.projection_harness import entry
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer

PARTITIONS = 8
SKUS = [f"SKU-{n:03d}" for n in range(60)]
AT = 1_700_000_000.0
THRESHOLD = 5


def _stock(index: int) -> int:
    return (index * 7) % 23  # some at or under the threshold, some tied


def _orders() -> list[tuple[str, str, list[o.OrderLine], float, bool]]:
    """(order id, customer, lines, placed at, confirmed): every customer's orders spread over
    the partitions, some placed at the same second (ties), top sellers split across them."""
    made = []
    for n in range(45):
        customer = ("alice", "bob", "carol")[n % 3]
        lines = [
            o.OrderLine(SKUS[(n * 5 + k) % 12], 1 + (n + k) % 4, 100) for k in range(1 + n % 3)
        ]
        made.append((f"ord-{n:03d}", customer, lines, AT + n // 2, n % 4 != 3))
    return made


def _entries() -> dict[str, dict[int, list[Entry]]]:
    """Per projection kind (events, journal, integration): each partition's entries, in order."""
    ids = (f"{1000 + n}-0" for n in itertools.count())
    out: dict[str, dict[int, list[Entry]]] = {"events": {}, "journal": {}, "integration": {}}

    def add(kind: str, aggregate: str, item: msgspec.Struct, version: int = 1) -> None:
        made = entry(item, next(ids), version, AT)
        partition = partition_of(aggregate, PARTITIONS)
        out[kind].setdefault(partition, []).append(Entry(made.id, partition, made.fields))

    for index, sku in enumerate(SKUS):
        add(
            "events",
            sku,
            p.ProductCreated(sku, f"Item {sku}", 100 + index, p.Stock(_stock(index), 0, 0)),
        )
    for order_id, customer, lines, at, confirmed in _orders():
        total = sum(line.quantity * line.unit_price_cents for line in lines)
        placed = entry(o.OrderPlaced(order_id, customer, lines, total, "4242"), next(ids), 1, at)
        partition = partition_of(order_id, PARTITIONS)
        out["events"].setdefault(partition, []).append(Entry(placed.id, partition, placed.fields))
        if confirmed:
            add("events", order_id, o.OrderStockReserved(order_id, customer), 2)
            add("events", order_id, o.OrderPaid(order_id, customer, f"pay-{order_id}", total), 3)
            add("events", order_id, o.OrderConfirmed(order_id, customer, lines, total), 4)
            public = [o.PublicLine(line.sku, line.quantity) for line in lines]
            note = o.OrderConfirmedV1(
                event_id=f"ev-{order_id}", order_id=order_id, customer=customer,
                occurred_at=at, total_cents=total, lines=public,
            )  # fmt: skip
            add("integration", order_id, note)
        command_id = f"cmd-{order_id}-{partition}"
        outcome = "succeeded" if confirmed else "failed"
        logged = JournalEntry(command_id, "PlaceOrder", customer, outcome, str(at), str(at + 0.25))
        add("journal", order_id, logged)
    return out


PROJECTIONS: dict[str, list[Any]] = {
    "events": [
        CatalogProjection(),
        LowStockProjection(THRESHOLD),
        OrdersProjection(),
        TimelineProjection(),
        SalesProjection(),
    ],
    "journal": [CommandLogProjection()],
    "integration": [NotificationsProjection(retention_seconds=0)],
}


async def _project(read: Redis) -> ReadSide:
    for kind, partitions in _entries().items():
        for projection in PROJECTIONS[kind]:
            handler = ProjectionHandler(projection, read)
            for partition, entries in sorted(partitions.items()):
                await handler.handle(partition, entries)
    return ReadSide(read, PARTITIONS)


@pytest.fixture
async def single(redis_server: RedisServer) -> AsyncIterator[ReadSide]:
    read = connect(redis_server.url)
    await read.flushall()
    try:
        yield await _project(read)
    finally:
        await read.aclose()


@pytest.fixture
async def clustered(redis_cluster: RedisCluster) -> AsyncIterator[ReadSide]:
    redis_cluster.flushall()
    read = connect(redis_cluster.url)
    try:
        yield await _project(read)
    finally:
        await read.aclose()


async def _answers(read: ReadSide) -> dict[str, Any]:
    """Every gathering query's answer, as plain data."""
    page_1, after = await catalog.list_products(read, limit=7)
    assert after is not None
    page_2, after_2 = await catalog.list_products(read, after=after, limit=7)
    dashboard = await sales.sales_dashboard(read)
    answers = {
        "page 1": page_1,
        "page 1 continues after": after,
        "page 2": page_2,
        "page 2 continues after": after_2,
        "last page": await catalog.list_products(read, after=SKUS[-3], limit=7),
        "products": await catalog.count_products(read),
        "low stock": await sales.low_stock(read, limit=9),
        "sales": msgspec.structs.replace(dashboard, orders_per_minute=[]),
        "alice's orders": await orders.list_orders(read, "alice", limit=6),
        "everyone's orders": await orders.list_orders(read, None, limit=500),
        "alice's inbox": await notifications.inbox(read, "alice", limit=4),
        "commands": await command_stats(read),
    }
    return msgspec.to_builtins(answers)


async def test_every_gathering_query_answers_on_the_cluster_what_it_answers_on_one_server(
    single: ReadSide, clustered: ReadSide
) -> None:
    on_one_server = await _answers(single)
    assert await _answers(clustered) == on_one_server


async def test_gathered_answers_are_what_one_key_per_view_would_hold(single: ReadSide) -> None:
    """Merged pages, limits, sums and top sellers, against what the events say."""
    answers = await _answers(single)
    ordered = sorted(SKUS)
    assert [row["sku"] for row in answers["page 1"]] == ordered[:7]
    assert answers["page 1 continues after"] == ordered[6]
    assert [row["sku"] for row in answers["page 2"]] == ordered[7:14]
    assert answers["page 2 continues after"] == ordered[13]
    assert [row["sku"] for row in answers["last page"][0]] == ordered[-2:]
    assert answers["last page"][1] is None
    assert answers["products"] == len(SKUS)

    low = sorted((_stock(i), sku) for i, sku in enumerate(SKUS) if _stock(i) <= THRESHOLD)
    assert [(row["available"], row["sku"]) for row in answers["low stock"]] == low[:9]

    placed = _orders()
    confirmed = [order for order in placed if order[4]]
    units: Counter[str] = Counter()
    for _id, _customer, lines, _at, _ok in confirmed:
        for line in lines:
            units[line.sku] += line.quantity
    top = sorted(units.items(), key=lambda item: (item[1], item[0]), reverse=True)[:10]
    dashboard = answers["sales"]
    assert [(row["sku"], row["units"]) for row in dashboard["top_sellers"]] == top
    assert dashboard["orders_placed"] == len(placed)
    revenue = sum(line.quantity * 100 for order in confirmed for line in order[2])
    assert dashboard["revenue_cents"] == revenue
    assert dashboard["orders_by_status"] == {
        "confirmed": len(confirmed),
        "placed": len(placed) - len(confirmed),
    }

    newest = sorted(
        ((at, order_id) for order_id, customer, _lines, at, _ok in placed if customer == "alice"),
        reverse=True,
    )
    assert [row["order_id"] for row in answers["alice's orders"]] == [i for _, i in newest[:6]]
    assert len(answers["everyone's orders"]) == len(placed)

    alice_confirmed = sorted(
        ((at, f"ev-{i}") for i, c, _lines, at, ok in placed if c == "alice" and ok), reverse=True
    )
    inbox = answers["alice's inbox"]
    assert inbox["unread"] == len(alice_confirmed)
    assert [item["id"] for item in inbox["items"]] == [i for _, i in alice_confirmed[:4]]

    commands = answers["commands"]
    assert commands["counts"] == {
        "succeeded": len(confirmed),
        "rejected": 0,
        "failed": len(placed) - len(confirmed),
    }
    assert len(commands["recent"]) == 20
    newest_done = sorted((at + 0.25 for *_rest, at, _ok in placed), reverse=True)[:20]
    assert [c["completed_at"] for c in commands["recent"]] == newest_done


async def test_one_read_models_keys_are_spread_over_all_three_masters(
    clustered: ReadSide, redis_cluster: RedisCluster
) -> None:
    holders = set()
    for node in redis_cluster.nodes:
        client = node.client()
        try:
            if any(client.scan_iter(match="rm:catalog:*", count=1000)):
                holders.add(node.port)
            role = client.execute_command("ROLE")[0]
        finally:
            client.close()
        assert role == "master"
    assert len(holders) == len(redis_cluster.nodes) == 3
    assert await catalog.count_products(clustered) == len(SKUS)


async def test_a_page_is_exact_however_the_partitions_share_it(
    single: ReadSide, clustered: ReadSide
) -> None:
    """One partition holding most of a page (its fair share is read first, then the rest)."""
    members = {p: [f"m-{p}-{n:02d}" for n in range(30 if p == 5 else 2)] for p in range(8)}
    everything = sorted(m for some in members.values() for m in some)

    def key(partition: int) -> str:
        return f"rm:bench:{{p{partition}}}:index"

    for read in (single, clustered):
        for partition, some in members.items():
            await read.redis.zadd(key(partition), dict.fromkeys(some, 0))
        for after in ("", everything[3], "m-5-04", "m-5-28", everything[-1]):
            start = everything.index(after) + 1 if after else 0
            for count in (1, 7, 25, 60):
                expected = everything[start : start + count]
                assert await read.first_after(key, after, count) == expected, (after, count)
