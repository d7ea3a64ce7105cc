"""API.md "Queries": a read the projector cannot catch up with answers in bounded time, stale.

The web process runs with CONSISTENCY_WAIT_SECONDS=1 and the projector is killed (as in a
crash) after the product reached the catalog, so the read model stays behind for good.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.kernel.positions import parse, reached
from tests.support.api_client import Storefront, create_product, running_storefront, send
from tests.support.polling import eventually
from tests.support.redis_cluster import RedisCluster


@pytest.fixture(scope="module")
def storefront(
    tmp_path_factory: pytest.TempPathFactory, stack_cluster: RedisCluster | None
) -> Iterator[Storefront]:
    with running_storefront(
        tmp_path_factory.mktemp("consistency"), cluster=stack_cluster, CONSISTENCY_WAIT_SECONDS="1"
    ) as made:
        yield made


async def test_a_position_the_projector_never_reaches_answers_stale_with_the_old_state(
    storefront: Storefront,
) -> None:
    """Projector down: `?min_position=` waits (bounded), then answers the old state, stale."""
    storefront.start_workers(["projector"])
    async with storefront.client("admin") as admin, storefront.client() as anon:
        sku, _ = await create_product(admin, stock=5)

        async def probe() -> int:
            return (await anon.get(f"/api/products/{sku}")).status_code

        await eventually(probe, until=lambda status: status == 200, message="projected")
        storefront.workers.pop("projector").kill()

        restock = await send(admin, {"type": "RestockProduct", "sku": sku, "quantity": 10})
        assert restock.status_code == 200, restock.text
        position = restock.json()["position"]

        one = await anon.get(f"/api/products/{sku}", params={"min_position": position})
        assert one.status_code == 200, one.text
        assert one.headers.get("x-consistency") == "stale"
        assert one.json()["available"] == 5
        assert not reached(parse(one.headers["x-read-position"]), parse(position))

        listing = await anon.get("/api/products", params={"min_position": position})
        assert listing.status_code == 200
        assert listing.headers.get("x-consistency") == "stale"
        assert [p["available"] for p in listing.json() if p["sku"] == sku] == [5]

        plain = await anon.get(f"/api/products/{sku}")
        assert "x-consistency" not in plain.headers  # no position asked, nothing to be stale for
        assert plain.json()["available"] == 5
