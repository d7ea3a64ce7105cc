"""API.md "Commands": success replies (sync, async, replays) and GET /api/commands/<id>."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from app.kernel.partitions import partition_of_command
from app.kernel.positions import parse
from tests.support.api_client import (
    DECLINED_CARD,
    GOOD_CARD,
    Storefront,
    assert_problem,
    create_product,
    place_order,
    running_storefront,
    send,
    unique_sku,
    wait_for_command,
)
from tests.support.polling import eventually

PARTITIONS = 4
STATUS_FIELDS = {
    "command_id",
    "type",
    "status",
    "accepted_at",
    "completed_at",
    "steps",
    "progress",
    "error",
    "position",
    "queue",
}
PROBLEM_FIELDS = {"type", "title", "status", "code", "detail"}


@pytest.fixture(scope="module")
def storefront(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storefront]:
    with running_storefront(
        tmp_path_factory.mktemp("command-replies"), workers=("commands", "projector", "process")
    ) as made:
        yield made


def assert_command_id(command_id: str) -> None:
    assert partition_of_command(command_id, PARTITIONS) is not None, command_id


def assert_accepted(response: httpx.Response) -> str:
    """202, Location: /api/commands/<id>, body exactly {command_id, status: accepted}."""
    assert response.status_code == 202, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"command_id", "status"}, body
    assert body["status"] == "accepted"
    assert_command_id(body["command_id"])
    assert response.headers["location"] == f"/api/commands/{body['command_id']}"
    command_id: str = body["command_id"]
    return command_id


def assert_succeeded(response: httpx.Response) -> dict[str, Any]:
    """200, body exactly {command_id, status: succeeded, position: <token>}."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"command_id", "status", "position"}, body
    assert body["status"] == "succeeded"
    assert_command_id(body["command_id"])
    assert parse(body["position"]), body  # a position token the service can be given back
    assert "location" not in response.headers
    return body


async def product_after(client: httpx.AsyncClient, sku: str, position: str) -> dict[str, Any]:
    """The catalog's view of `sku` once it reflects `position` (read-your-write). The query
    waits up to CONSISTENCY_WAIT_SECONDS, then answers stale: on a busy machine the projector
    may not be reading yet, so a stale answer is asked again (until a deadline); the answer
    that says it reached the position must hold the write."""
    deadline = time.monotonic() + 60
    while True:
        response = await client.get(f"/api/products/{sku}", params={"min_position": position})
        if "x-consistency" not in response.headers or time.monotonic() > deadline:
            break
    assert "x-consistency" not in response.headers, "the catalog never reached the position"
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- replies ----------------------------------------------------------------------------------


async def test_a_sync_command_answers_200_succeeded_with_a_position(
    admin: httpx.AsyncClient,
) -> None:
    """CreateProduct: 200 {command_id, status: succeeded, position}; reading at it sees it."""
    sku = unique_sku()
    response = await send(
        admin,
        {
            "type": "CreateProduct",
            "sku": sku,
            "name": "Sync",
            "price_cents": 990,
            "initial_stock": 4,
        },
    )
    body = assert_succeeded(response)
    product = await product_after(admin, sku, body["position"])
    assert product == {
        "sku": sku,
        "name": "Sync",
        "price_cents": 990,
        "available": 4,
        "sold": 0,
        "status": "active",
    }


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ({"type": "RenameProduct", "name": "Renamed"}, {"name": "Renamed"}),
        ({"type": "ChangePrice", "price_cents": 4321}, {"price_cents": 4321}),
        ({"type": "RestockProduct", "quantity": 7}, {"available": 17}),
        ({"type": "DiscontinueProduct"}, {"status": "discontinued"}),
    ],
    ids=lambda value: value.get("type", ""),
)
async def test_every_sync_product_command_answers_200_succeeded(
    admin: httpx.AsyncClient, command: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Each sync admin command: 200 succeeded, and its effect is readable at its position."""
    sku, _ = await create_product(admin, stock=10)
    body = assert_succeeded(await send(admin, {**command, "sku": sku}))
    product = await product_after(admin, sku, body["position"])
    assert {name: product[name] for name in expected} == expected


async def test_import_catalog_is_async_202_and_reports_progress(
    admin: httpx.AsyncClient,
) -> None:
    """ImportCatalog: 202 + Location; the status ends succeeded with progress {done, total}."""
    skus = [unique_sku("IMP") for _ in range(3)]
    rows = [{"sku": sku, "name": f"Imported {sku}", "price_cents": 250} for sku in skus]
    command_id = assert_accepted(await send(admin, {"type": "ImportCatalog", "products": rows}))
    status = await wait_for_command(admin, command_id)
    assert status["status"] == "succeeded", status
    assert status["type"] == "ImportCatalog"
    assert status["progress"] == {"done": 3, "total": 3}
    assert status["error"] is None
    for sku in skus:

        async def probe(sku: str = sku) -> httpx.Response:
            return await admin.get(f"/api/products/{sku}")

        found = await eventually(probe, until=lambda r: r.status_code == 200, message=sku)
        assert found.json()["price_cents"] == 250


async def test_place_order_is_async_202_and_ends_succeeded_through_named_steps(
    admin: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    """PlaceOrder: 202 + Location; the status moves through named steps to succeeded."""
    sku, _ = await create_product(admin, stock=5)
    response = await send(
        alice,
        {"type": "PlaceOrder", "lines": [{"sku": sku, "quantity": 2}], "card_number": GOOD_CARD},
    )
    command_id = assert_accepted(response)
    location = await alice.get(response.headers["location"])
    assert location.status_code == 200
    assert location.json()["command_id"] == command_id
    status = await wait_for_command(alice, command_id)
    assert status["status"] == "succeeded", status
    names = [step["name"] for step in status["steps"]]
    assert names[0] == "accepted" and names[-1] == "succeeded", names
    assert names.index("stock_reserved") < names.index("payment_captured"), names
    assert parse(status["position"])


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ({"type": "RestockProduct", "quantity": 5}, {"available": 15}),
        ({"type": "RenameProduct", "name": "Later"}, {"name": "Later"}),
    ],
    ids=lambda value: value.get("type", ""),
)
async def test_prefer_respond_async_turns_a_sync_command_into_202(
    admin: httpx.AsyncClient, command: dict[str, Any], expected: dict[str, Any]
) -> None:
    """`Prefer: respond-async` on a sync command: 202 + Location; a worker then runs it."""
    sku, _ = await create_product(admin, stock=10)
    response = await send(admin, {**command, "sku": sku}, Prefer="respond-async")
    command_id = assert_accepted(response)
    status = await wait_for_command(admin, command_id)
    assert status["status"] == "succeeded", status
    product = await product_after(admin, sku, status["position"])
    assert {name: product[name] for name in expected} == expected


async def test_an_idempotent_replay_of_a_sync_command_returns_the_same_body_and_runs_once(
    admin: httpx.AsyncClient,
) -> None:
    """Same Idempotency-Key and body: identical 200 body; the restock is applied once."""
    sku, _ = await create_product(admin, stock=10)
    body = {"type": "RestockProduct", "sku": sku, "quantity": 5}
    key = f"restock-{sku}"
    first = await send(admin, body, Idempotency_Key=key)
    second = await send(admin, body, Idempotency_Key=key)
    assert_succeeded(first)
    assert second.status_code == 200
    assert second.json() == first.json()
    assert (await product_after(admin, sku, first.json()["position"]))["available"] == 15
    third = assert_succeeded(await send(admin, body))  # no key: a new restock
    assert third["command_id"] != first.json()["command_id"]
    assert (await product_after(admin, sku, third["position"]))["available"] == 20


async def test_an_idempotent_replay_of_a_failed_command_returns_the_same_problem(
    admin: httpx.AsyncClient,
) -> None:
    """A replayed key whose command failed: the same 409 problem again."""
    body = {"type": "RestockProduct", "sku": unique_sku("NONE"), "quantity": 1}
    key = f"ghost-{body['sku']}"
    first = await send(admin, body, Idempotency_Key=key)
    second = await send(admin, body, Idempotency_Key=key)
    assert_problem(first, 409, "unknown_product")
    assert_problem(second, 409, "unknown_product")
    assert second.json() == first.json()


async def test_an_idempotent_replay_of_an_async_command_returns_the_same_202(
    admin: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    """PlaceOrder twice with one key: the same 202 (body and Location) and one order only."""
    sku, _ = await create_product(admin, stock=10)
    key = f"order-{sku}"
    body = {"type": "PlaceOrder", "lines": [{"sku": sku, "quantity": 1}], "card_number": GOOD_CARD}
    first = await send(alice, body, Idempotency_Key=key)
    second = await send(alice, body, Idempotency_Key=key)
    command_id = assert_accepted(first)
    assert second.status_code == 202
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    status = await wait_for_command(alice, command_id)
    assert status["status"] == "succeeded", status
    after_replay = await send(alice, body, Idempotency_Key=key)  # after it finished, too
    assert after_replay.json() == first.json()
    orders = await alice.get("/api/orders", params={"min_position": status["position"]})
    mine = [o for o in orders.json() if any(line["sku"] == sku for line in o["lines"])]
    assert len(mine) == 1, mine


# --- GET /api/commands/<id> ----------------------------------------------------------------


async def test_command_status_has_the_documented_shape(admin: httpx.AsyncClient) -> None:
    """A finished sync command: every documented field, steps with times, its position."""
    _sku, created = await create_product(admin)
    response = await admin.get(f"/api/commands/{created['command_id']}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    status = response.json()
    assert set(status) == STATUS_FIELDS, status
    assert status["command_id"] == created["command_id"]
    assert status["type"] == "CreateProduct"
    assert status["status"] == "succeeded"
    assert status["progress"] is None
    assert status["error"] is None
    assert status["position"] == created["position"]
    assert iso(status["accepted_at"]) <= iso(status["completed_at"])
    assert [step["name"] for step in status["steps"]] == ["accepted", "succeeded"]
    for step in status["steps"]:
        assert set(step) == {"name", "at"}
        iso(step["at"])


async def test_a_command_is_visible_to_its_sender_and_admins_only(
    admin: httpx.AsyncClient,
    alice: httpx.AsyncClient,
    bob: httpx.AsyncClient,
    anon: httpx.AsyncClient,
) -> None:
    """Alice's PlaceOrder: Alice and admins see it; Bob and anonymous clients get 404."""
    sku, _ = await create_product(admin, stock=5)
    command_id = await place_order(alice, [(sku, 1)])
    path = f"/api/commands/{command_id}"
    assert (await alice.get(path)).json()["command_id"] == command_id
    assert (await admin.get(path)).json()["command_id"] == command_id
    assert_problem(await bob.get(path), 404, "not_found")
    assert_problem(await anon.get(path), 404, "not_found")


async def test_an_admins_command_is_hidden_from_customers(
    admin: httpx.AsyncClient, alice: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    """A command sent by the admin is 404 for a customer and for an anonymous client."""
    _sku, created = await create_product(admin)
    path = f"/api/commands/{created['command_id']}"
    assert_problem(await alice.get(path), 404, "not_found")
    assert_problem(await anon.get(path), 404, "not_found")


@pytest.mark.parametrize(
    "command_id",
    ["garbage", "0123456789abcdef-1", "abc-99", "-1", "x" * 300, "%00", "seed.nothing-0"],
)
async def test_an_unknown_or_garbage_command_id_is_404(
    admin: httpx.AsyncClient, command_id: str
) -> None:
    """Ids that were never issued (or cannot be): 404 not_found, even for an admin."""
    assert_problem(await admin.get(f"/api/commands/{command_id}"), 404, "not_found")


def assert_failed_with(status: dict[str, Any], code: str) -> dict[str, Any]:
    assert status["status"] == "failed", status
    assert status["completed_at"] is not None
    assert status["steps"][-1]["name"] == "failed"
    error: dict[str, Any] = status["error"]
    assert set(error) >= PROBLEM_FIELDS, error
    assert error["code"] == code
    assert error["status"] == 409
    assert error["type"] and error["title"] and error["detail"]
    return error


async def test_a_declined_order_ends_failed_with_payment_declined(
    admin: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    """The declined test card: status failed, `error` is the payment_declined problem."""
    sku, _ = await create_product(admin, stock=5)
    command_id = await place_order(alice, [(sku, 1)], DECLINED_CARD)
    assert_failed_with(await wait_for_command(alice, command_id), "payment_declined")


async def test_an_order_beyond_the_stock_ends_failed_with_insufficient_stock(
    admin: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    """Asking for more than is available: status failed, `error` is insufficient_stock."""
    sku, _ = await create_product(admin, stock=2)
    command_id = await place_order(alice, [(sku, 3)])
    assert_failed_with(await wait_for_command(alice, command_id), "insufficient_stock")


async def test_an_order_of_a_missing_product_ends_failed_with_unknown_product(
    alice: httpx.AsyncClient,
) -> None:
    """A sku that does not exist: PlaceOrder is accepted (202), then fails with unknown_product."""
    command_id = await place_order(alice, [(unique_sku("NONE"), 1)])
    assert_failed_with(await wait_for_command(alice, command_id), "unknown_product")


async def test_an_import_with_rejected_rows_ends_failed_with_their_paths(
    admin: httpx.AsyncClient,
) -> None:
    """ImportCatalog with an existing sku: failed, listing that row; the other row imported."""
    existing, _ = await create_product(admin)
    fresh = unique_sku("IMP")
    rows = [
        {"sku": fresh, "name": "Fresh", "price_cents": 100},
        {"sku": existing, "name": "Clash", "price_cents": 100},
    ]
    command_id = assert_accepted(await send(admin, {"type": "ImportCatalog", "products": rows}))
    status = await wait_for_command(admin, command_id)
    error = assert_failed_with(status, "import_rows_rejected")
    assert [e["path"] for e in error["errors"]] == ["$.products[1]"]
    assert "sku_exists" in error["errors"][0]["message"]
    assert status["progress"] == {"done": 2, "total": 2}

    async def probe() -> httpx.Response:
        return await admin.get(f"/api/products/{fresh}")

    imported = await eventually(probe, until=lambda r: r.status_code == 200, message=fresh)
    assert imported.json()["name"] == "Fresh"


async def test_a_multi_partition_command_gives_a_position_covering_all_its_effects(
    admin: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    """Read-your-writes for commands whose effects land in several partitions: the final
    position of an ImportCatalog covers every row, a PlaceOrder's covers the stock it took,
    and a query given it waits until all of that is readable (never `stale` here)."""
    skus = [unique_sku("RYW") for _ in range(12)]  # crc32 spreads them over the partitions
    rows = [{"sku": sku, "name": "Row", "price_cents": 100, "initial_stock": 9} for sku in skus]
    command_id = assert_accepted(await send(admin, {"type": "ImportCatalog", "products": rows}))
    imported = await wait_for_command(admin, command_id)
    covered = parse(imported["position"])
    assert len(covered) > 1, imported  # the rows landed in several partitions
    for sku in skus:
        product = await product_after(admin, sku, imported["position"])
        assert product["available"] == 9

    response = await send(
        alice,
        {
            "type": "PlaceOrder",
            "lines": [{"sku": skus[0], "quantity": 2}, {"sku": skus[-1], "quantity": 3}],
            "card_number": GOOD_CARD,
        },
    )
    placed = await wait_for_command(alice, assert_accepted(response))
    assert placed["status"] == "succeeded", placed
    for sku, bought in ((skus[0], 2), (skus[-1], 3)):
        product = await product_after(alice, sku, placed["position"])
        assert (product["available"], product["sold"]) == (9 - bought, bought)
