"""API.md "Queries": products, orders, the admin status, read positions and read-your-write."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from app.consumers import watched_consumers
from app.kernel.positions import parse, reached
from app.projections import registry
from app.queries.catalog import ProductView
from tests.support.api_client import (
    GOOD_CARD,
    Storefront,
    assert_problem,
    create_product,
    error_paths,
    placed_order,
    running_storefront,
    send,
    unique_sku,
)
from tests.support.polling import eventually
from tests.support.redis_cluster import RedisCluster

PRODUCT_FIELDS = {f.encode_name for f in msgspec.structs.fields(ProductView)}
DOCUMENTED_PRODUCT_FIELDS = {"sku", "name", "price_cents", "available", "sold", "status"}
ORDER_FIELDS = {"order_id", "customer", "status", "lines", "total_cents", "card_last4", "timeline"}


@pytest.fixture(scope="module")
def storefront(
    tmp_path_factory: pytest.TempPathFactory, stack_cluster: RedisCluster | None
) -> Iterator[Storefront]:
    with running_storefront(
        tmp_path_factory.mktemp("queries"),
        workers=("commands", "projector", "process"),
        cluster=stack_cluster,
    ) as made:
        yield made


def read_position(response: httpx.Response) -> dict[int, tuple[int, int]]:
    token = response.headers.get("x-read-position")
    assert token is not None, (response.request.url, response.headers)
    return parse(token)


async def projected(client: httpx.AsyncClient, sku: str) -> dict[str, Any]:
    async def probe() -> httpx.Response:
        return await client.get(f"/api/products/{sku}")

    response = await eventually(probe, until=lambda r: r.status_code == 200, message=sku)
    body: dict[str, Any] = response.json()
    return body


# --- products ------------------------------------------------------------------------------------


async def test_products_have_the_documented_shape(
    admin: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    """GET /api/products and /api/products/<sku> are public and show exactly the six fields."""
    sku, _ = await create_product(admin, stock=7, price=1999)
    one = await projected(anon, sku)
    assert one == {
        "sku": sku,
        "name": f"Product {sku}",
        "price_cents": 1999,
        "available": 7,
        "sold": 0,
        "status": "active",
    }
    listing = await anon.get("/api/products", params={"limit": 1000})
    assert listing.status_code == 200
    products = listing.json()
    assert DOCUMENTED_PRODUCT_FIELDS <= PRODUCT_FIELDS
    assert all(set(p) == PRODUCT_FIELDS for p in products), products[:3]
    assert one in products
    skus = [p["sku"] for p in products]
    assert skus == sorted(skus)


async def test_an_unknown_product_is_a_404_problem(anon: httpx.AsyncClient) -> None:
    """GET /api/products/<sku that does not exist>: 404 not_found problem."""
    assert_problem(await anon.get(f"/api/products/{unique_sku('NONE')}"), 404, "not_found")


async def test_a_sold_order_shows_in_the_product(
    admin: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    """A confirmed order moves units from available to sold in the catalog."""
    sku, _command, _order = await placed_order(alice, admin)

    async def probe() -> dict[str, Any]:
        return (await alice.get(f"/api/products/{sku}")).json()  # type: ignore[no-any-return]

    product = await eventually(probe, until=lambda p: p["sold"] == 1, message="sold")
    assert product["available"] == 49


# --- positions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "path"),
    [
        (None, "/api/products"),
        (None, "/api/products/{sku}"),
        ("alice", "/api/orders"),
        ("alice", "/api/orders/{order_id}"),
        ("admin", "/api/admin/sales"),
        ("alice", "/api/notifications"),
    ],
)
async def test_every_query_response_carries_x_read_position(
    storefront: Storefront, who: str | None, path: str
) -> None:
    """Each read answers with X-Read-Position, a token that can be given back as min_position."""
    async with storefront.client("admin") as admin, storefront.client("alice") as alice:
        sku, _command, order_id = await placed_order(alice, admin)
    async with storefront.client(who) as client:
        response = await client.get(path.format(sku=sku, order_id=order_id))
        assert response.status_code == 200, response.text
        token = response.headers["x-read-position"]
        assert read_position(response)
        url = path.format(sku=sku, order_id=order_id)
        again = await client.get(url, params={"min_position": token})
    assert again.status_code == 200
    assert "x-consistency" not in again.headers
    assert reached(read_position(again), parse(token))


async def test_the_admin_status_query_carries_x_read_position(admin: httpx.AsyncClient) -> None:
    """/api/admin/status is one of API.md's queries, so it carries X-Read-Position too."""
    response = await admin.get("/api/admin/status")
    assert response.status_code == 200
    assert read_position(response)


async def test_a_not_found_query_answer_still_carries_x_read_position(
    anon: httpx.AsyncClient,
) -> None:
    """A 404 is a query response too: it says which position it reflects (the 'not yet?' case)."""
    response = await anon.get(f"/api/products/{unique_sku('NONE')}")
    assert response.status_code == 404
    assert read_position(response)


async def test_min_position_of_a_sync_command_reads_its_own_write(
    admin: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    """`?min_position=<position of the command>` returns the new state, not marked stale."""
    sku, _ = await create_product(admin, stock=3)
    await projected(anon, sku)
    for quantity, expected in ((4, 7), (5, 12)):
        restock = await send(admin, {"type": "RestockProduct", "sku": sku, "quantity": quantity})
        assert restock.status_code == 200, restock.text
        position = restock.json()["position"]
        one = await anon.get(f"/api/products/{sku}", params={"min_position": position})
        assert one.status_code == 200
        assert "x-consistency" not in one.headers
        assert one.json()["available"] == expected
        assert reached(read_position(one), parse(position))
    listing = await anon.get("/api/products", params={"min_position": position, "limit": 1000})
    assert "x-consistency" not in listing.headers
    assert {"sku": sku, "available": 12} in [
        {"sku": p["sku"], "available": p["available"]} for p in listing.json()
    ]


async def test_a_created_product_is_readable_at_the_creations_position(
    admin: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    """Right after CreateProduct, reading at its position finds the product (no 404 race)."""
    for _ in range(5):
        sku, created = await create_product(admin, stock=2)
        one = await anon.get(f"/api/products/{sku}", params={"min_position": created["position"]})
        assert one.status_code == 200, one.text
        assert one.json()["available"] == 2


@pytest.mark.parametrize(
    "token", ["garbage", "0:abc-1", "1:2:3", "0:1-0;1", "p:1-0", "123:1-0", "0:1-0," + "x" * 2100]
)
async def test_a_garbage_min_position_is_422(anon: httpx.AsyncClient, token: str) -> None:
    """A min_position the service never issued: 422 validation_failed at `min_position`."""
    response = await anon.get("/api/products", params={"min_position": token})
    body = assert_problem(response, 422, "validation_failed")
    assert error_paths(body) == ["min_position"]


async def test_a_position_naming_a_partition_the_service_lacks_is_422(
    anon: httpx.AsyncClient,
) -> None:
    """The service runs 4 partitions: a token for partition 7 was never issued by it (422)."""
    response = await anon.get("/api/products", params={"min_position": "7:1-0"})
    body = assert_problem(response, 422, "validation_failed")
    assert error_paths(body) == ["min_position"]


# --- orders --------------------------------------------------------------------------------------


async def test_orders_are_listed_for_their_customer_and_all_for_admins(
    admin: httpx.AsyncClient, alice: httpx.AsyncClient, bob: httpx.AsyncClient
) -> None:
    """GET /api/orders: a customer sees only their own orders; an admin sees everyone's."""
    _a_sku, _a_cmd, alice_order = await placed_order(alice, admin)
    _b_sku, _b_cmd, bob_order = await placed_order(bob, admin)
    alice_orders = (await alice.get("/api/orders")).json()
    bob_orders = (await bob.get("/api/orders")).json()
    assert alice_order in {o["order_id"] for o in alice_orders}
    assert bob_order not in {o["order_id"] for o in alice_orders}
    assert {o["customer"] for o in alice_orders} == {"alice"}
    assert {o["customer"] for o in bob_orders} == {"bob"}
    everyone = (await admin.get("/api/orders", params={"limit": 500})).json()
    assert {alice_order, bob_order} <= {o["order_id"] for o in everyone}


async def test_an_order_has_the_documented_shape(
    admin: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    """GET /api/orders/<id>: the documented fields; the card shows its last four digits only."""
    sku, _command, order_id = await placed_order(alice, admin)
    response = await alice.get(f"/api/orders/{order_id}")
    assert response.status_code == 200, response.text
    order = response.json()
    assert set(order) >= ORDER_FIELDS, order
    assert order["order_id"] == order_id
    assert order["customer"] == "alice"
    assert order["status"] == "confirmed"
    assert order["lines"] == [{"sku": sku, "quantity": 1, "unit_price_cents": 1000}]
    assert order["total_cents"] == 1000
    assert order["card_last4"] == GOOD_CARD[-4:]
    assert GOOD_CARD not in response.text
    statuses = [step["status"] for step in order["timeline"]]
    assert statuses[0] == "placed" and statuses[-1] == "confirmed", statuses
    assert all(step["at"] for step in order["timeline"])


async def test_an_order_is_visible_to_its_owner_and_admins_only(
    admin: httpx.AsyncClient,
    alice: httpx.AsyncClient,
    bob: httpx.AsyncClient,
    anon: httpx.AsyncClient,
) -> None:
    """Owner and admin: 200; another customer: 404; anonymous: 401; unknown id: 404."""
    _sku, _command, order_id = await placed_order(alice, admin)
    assert (await alice.get(f"/api/orders/{order_id}")).json()["order_id"] == order_id
    assert (await admin.get(f"/api/orders/{order_id}")).json()["order_id"] == order_id
    assert_problem(await bob.get(f"/api/orders/{order_id}"), 404, "not_found")
    assert_problem(await anon.get(f"/api/orders/{order_id}"), 401, "unauthenticated")
    assert_problem(await alice.get("/api/orders/o" + "f" * 28), 404, "not_found")


async def test_orders_need_a_session(anon: httpx.AsyncClient) -> None:
    """GET /api/orders anonymously: 401 unauthenticated."""
    assert_problem(await anon.get("/api/orders"), 401, "unauthenticated")


# --- admin status ------------------------------------------------------------------------------


async def test_admin_status_is_for_admins_only(
    anon: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    """GET /api/admin/status: 401 anonymous, 403 forbidden for a customer."""
    assert_problem(await anon.get("/api/admin/status"), 401, "unauthenticated")
    assert_problem(await alice.get("/api/admin/status"), 403, "forbidden")


async def test_admin_status_reports_commands_projections_workers_and_sockets(
    storefront: Storefront, admin: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    """The documented sections: counts, rates and latency percentiles of the commands; every
    consumer with its lag (none, once those that run are idle) and dead letters (none here);
    the workers with their heartbeats; the sockets open."""
    await placed_order(alice, admin)
    running = {*registry.PROJECTOR, "fulfilment", "commands"}  # the notifier is not started

    async def probe() -> dict[str, Any]:
        response = await admin.get("/api/admin/status")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def idle(status: dict[str, Any]) -> bool:
        consumers = status["projections"]
        return all(c["lag_events"] == 0 for c in consumers if c["name"] in running)

    async with storefront.ws():
        status = await eventually(
            probe,
            until=lambda s: (
                s["commands"]["counts"].get("succeeded", 0) >= 2
                and s["commands"]["rate_per_second"] > 0  # the order finished a moment ago
                and {"commands", "projector", "process", "web"} <= {w["kind"] for w in s["workers"]}
                and s["websocket_connections"] >= 1
                and idle(s)
            ),
            message="commands counted, heartbeats, the socket counted, the pipeline idle",
        )
    commands = status["commands"]
    succeeded, failed = commands["counts"]["succeeded"], commands["counts"].get("failed", 0)
    assert commands["success_rate"] == round(succeeded / (succeeded + failed), 4)
    latency = commands["latency_ms"]
    assert set(latency) >= {"p50", "p95", "p99"}
    # Stamps are in milliseconds: an inline command can finish within the one it was accepted
    # in (0 ms); the order's trip through the queue and the process manager cannot.
    assert 0 <= latency["p50"] <= latency["p95"] <= latency["p99"], latency
    assert latency["p99"] > 0, latency
    assert {c["name"] for c in status["projections"]} == {w.name for w in watched_consumers()}
    for consumer in status["projections"]:
        assert {
            "name",
            "position",
            "lag_events",
            "lag_seconds",
            "status",
            "last_error",
            "dead_letters",
        } <= set(consumer), consumer
        assert consumer["lag_events"] == sum(p["lag_events"] for p in consumer["partitions"])
        if consumer["name"] in running:
            caught_up = (consumer["lag_events"], consumer["lag_seconds"], consumer["dead_letters"])
            assert caught_up == (0, 0.0, 0), consumer
    ids = [worker["id"] for worker in status["workers"]]
    assert len(set(ids)) == len(ids), ids
    for worker in status["workers"]:
        assert {"kind", "id", "heartbeat_age_seconds"} <= set(worker), worker
        assert worker["id"].startswith(f"{worker['kind']}-"), worker
