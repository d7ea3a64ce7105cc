"""The pages' live regions and the declared admin page, from outside: each fragment route a
page re-fetches when its socket opens answers what the page would show, to whom it would."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from app.read_models import DECLARED
from tests.support.api_client import (
    Storefront,
    create_product,
    placed_order,
    running_storefront,
)
from tests.support.polling import eventually
from tests.support.redis_cluster import RedisCluster


@pytest.fixture(scope="module")
def storefront(
    tmp_path_factory: pytest.TempPathFactory, stack_cluster: RedisCluster | None
) -> Iterator[Storefront]:
    with running_storefront(
        tmp_path_factory.mktemp("regions"),
        workers=("commands", "projector", "process"),
        cluster=stack_cluster,
    ) as made:
        yield made


def region_of(page: str, route: str) -> str:
    """The opening tag of the page's live region that re-fetches `route`."""
    found = re.search(rf'<[a-z]+ [^>]*data-live-region hx-get="{re.escape(route)}"[^>]*>', page)
    assert found is not None, (route, page)
    return found.group(0)


async def test_the_catalog_region_is_each_products_row_for_anyone(
    admin: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    sku, _ = await create_product(admin, stock=3)
    page = (await anon.get(f"/?after={sku[:-1]}")).text
    region_of(page, f"/fragments/catalog?after={sku[:-1]}")

    async def probe() -> httpx.Response:
        return await anon.get("/fragments/catalog", params={"after": sku[:-1]})

    row = f'<tr id="product-{sku}" data-sku="{sku}"'
    rows = await eventually(
        probe, until=lambda reply: row in reply.text, timeout=30, message="projected"
    )
    assert rows.status_code == 200
    assert "data-insert-into" not in rows.text  # not a pushed copy


async def test_the_order_regions_show_only_what_the_asker_may_see(
    storefront: Storefront,
    admin: httpx.AsyncClient,
    alice: httpx.AsyncClient,
    bob: httpx.AsyncClient,
    anon: httpx.AsyncClient,
) -> None:
    _sku, _command, order_id = await placed_order(alice, admin)
    page = (await alice.get(f"/orders/{order_id}")).text
    assert 'hx-target="find section"' in region_of(page, f"/fragments/orders/{order_id}")
    region_of((await alice.get("/orders")).text, "/fragments/orders")
    region_of((await admin.get("/admin/orders")).text, "/fragments/orders?all=1")

    detail = await alice.get(f"/fragments/orders/{order_id}")
    assert f'id="order-detail-{order_id}"' in detail.text
    assert (await bob.get(f"/fragments/orders/{order_id}")).status_code == 404
    assert (await anon.get(f"/fragments/orders/{order_id}")).status_code == 404
    assert (await admin.get(f"/fragments/orders/{order_id}")).status_code == 200

    assert f'id="order-row-{order_id}"' in (await alice.get("/fragments/orders")).text
    assert order_id not in (await bob.get("/fragments/orders?all=1")).text  # only an admin's
    assert f'id="order-row-{order_id}"' in (await admin.get("/fragments/orders?all=1")).text
    assert (await anon.get("/fragments/orders")).status_code == 404


async def test_the_bell_and_a_commands_status_are_their_owners(
    admin: httpx.AsyncClient,
    alice: httpx.AsyncClient,
    bob: httpx.AsyncClient,
    anon: httpx.AsyncClient,
) -> None:
    _sku, command_id, _order = await placed_order(alice, admin)
    assert 'hx-swap="outerHTML"' in region_of((await alice.get("/")).text, "/fragments/bell")
    bell = await alice.get("/fragments/bell")
    assert bell.text.lstrip().startswith('<a id="bell"')
    anonymous = await anon.get("/fragments/bell")
    assert (anonymous.status_code, anonymous.text) == (200, "")

    page = (await alice.get(f"/commands/{command_id}")).text
    region = region_of(page, f"/fragments/commands/{command_id}")
    assert 'hx-target="find .command-status"' in region
    status = await alice.get(f"/fragments/commands/{command_id}")
    assert f'data-command-id="{command_id}" data-status="succeeded"' in status.text
    assert (await bob.get(f"/fragments/commands/{command_id}")).status_code == 404
    assert (await admin.get(f"/fragments/commands/{command_id}")).status_code == 200


async def test_the_admins_regions_and_the_declared_sales_page_are_the_admins(
    admin: httpx.AsyncClient, alice: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    region_of((await admin.get("/admin/status")).text, "/fragments/admin/status")
    assert '<section id="admin-status"' in (await admin.get("/fragments/admin/status")).text

    sales = await admin.get("/admin/sales")
    assert sales.status_code == 200
    assert "<title>Sales · Storefront</title>" in sales.text
    assert "<h1>Sales</h1>" in sales.text
    region_of(sales.text, "/fragments/admin/sales")
    assert '<section id="sales-dashboard">' in sales.text
    assert re.search(
        r'<a href="/admin/sales"[^>]*>Sales</a>', (await admin.get("/admin/status")).text
    )
    assert '<section id="sales-dashboard">' in (await admin.get("/fragments/admin/sales")).text

    for path in ("/admin/sales", "/fragments/admin/sales", "/fragments/admin/status"):
        for who in (alice, anon):
            assert (await who.get(path)).status_code == 403, path


async def test_every_region_with_its_own_loader_was_fetched_here() -> None:
    """A region declared later with a loader of its own (what it shows, to whom) gets its test
    here, or this fails; a declared page's region is the page machinery's, tested above."""
    own = {region.name for model in DECLARED for region in model.regions}
    assert own == {"catalog", "orders", "order", "bell", "command", "status"}
