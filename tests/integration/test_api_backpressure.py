"""Back-pressure a shopper can see (issue "Flash sale" item 3).

While orders queue, each accepted order's status says how many were ahead of it (and the
Processing… fragment shows it). With BACKLOG_LIMIT set, new PlaceOrders past that backlog
are answered 503 `overloaded` with Retry-After — nothing accepted — so the accepted ones keep
their latency; other commands are still taken; once the backlog drains, orders are again.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.api_client import (
    GOOD_CARD,
    Storefront,
    assert_problem,
    create_product,
    running_storefront,
    send,
    wait_for_command,
)
from tests.support.polling import eventually

LIMIT = 4


@pytest.fixture(scope="module")
def storefront(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storefront]:
    with running_storefront(
        tmp_path_factory.mktemp("backpressure"), BACKLOG_LIMIT=str(LIMIT)
    ) as made:
        yield made  # no workers yet: whatever is queued stays queued


def order(sku: str) -> dict[str, object]:
    return {"type": "PlaceOrder", "lines": [{"sku": sku, "quantity": 1}], "card_number": GOOD_CARD}


async def test_orders_past_the_backlog_limit_are_shed_with_retry_after(
    storefront: Storefront, admin: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    sku, _ = await create_product(admin, stock=50)
    accepted = []
    for _ in range(LIMIT):
        response = await send(alice, order(sku))
        assert response.status_code == 202, response.text
        accepted.append(response.json()["command_id"])
    places = []
    for command_id in accepted:
        status = (await alice.get(f"/api/commands/{command_id}")).json()
        assert status["status"] == "accepted"
        places.append(status["queue"]["ahead"])
    assert places == list(range(LIMIT))  # each saw the ones before it in line
    fragment = await alice.get(f"/fragments/commands/{accepted[-1]}")
    assert f"{LIMIT - 1} ahead of you in line" in fragment.text

    shed = await send(alice, order(sku))
    body = assert_problem(shed, 503, "overloaded")
    assert int(shed.headers["Retry-After"]) >= 1, shed.headers
    assert "command_id" not in body
    restock = await send(
        admin, {"type": "RestockProduct", "sku": sku, "quantity": 1}, prefer="respond-async"
    )
    assert restock.status_code == 202  # only new orders are shed

    storefront.start_workers(["commands", "projector", "process"])
    for command_id in accepted:
        assert (await wait_for_command(alice, command_id))["status"] == "succeeded"

    async def again() -> httpx.Response:
        return await send(alice, order(sku))

    taken = await eventually(
        again, until=lambda r: r.status_code == 202, message="orders taken again"
    )
    done = await wait_for_command(alice, taken.json()["command_id"])
    assert done["status"] == "succeeded" and done["queue"] is None
