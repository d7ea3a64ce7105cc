"""A line that cannot be had rejects the whole order, and the lines already held go back."""

from __future__ import annotations

from collections import Counter

from app.config import Settings
from app.domain.products import DiscontinueProduct
from app.services import Services
from tests.integration.conftest import ADMIN, ALICE, running_workers
from tests.support.orders_helpers import (
    captures,
    create_products,
    domain_events,
    load_order,
    load_product,
    order_id_of,
    payload,
    pipeline_groups,
    place_order,
    wait_final,
    wait_idle,
    wait_order_status,
)


async def stock_moves(services: Services, order_id: str) -> Counter[tuple[str, str]]:
    return Counter(
        (e.type, payload(e)["sku"])
        for e in await domain_events(services.write, services.settings.partitions)
        if e.aggregate == "product" and payload(e).get("order_id") == order_id
    )


async def test_one_short_line_rejects_the_order_and_releases_the_others(
    services: Services, settings: Settings
) -> None:
    """Three lines, the third short of stock: the first two are reserved then released, the
    order is rejected with insufficient_stock, nothing is charged, all stock is as before."""
    stock = {"MUG-1": 10, "TEE-1": 10, "LAMP-1": 1}
    await create_products(services, ADMIN, stock)
    async with running_workers(settings):
        command_id = await place_order(services, ALICE, {"MUG-1": 2, "TEE-1": 3, "LAMP-1": 2})
        status = await wait_final(services, command_id)
        order_id = await order_id_of(services, command_id)
        await wait_idle(services, pipeline_groups(settings))

    assert status.error is not None and status.error.code == "insufficient_stock", status
    assert "LAMP-1" in status.error.detail
    assert [s.name for s in status.steps] == ["accepted", "processing", "failed"]
    order = await load_order(services, order_id)
    assert (order.status, order.reason) == ("rejected", "insufficient_stock")
    assert await stock_moves(services, order_id) == Counter(
        {
            ("StockReserved", "MUG-1"): 1,
            ("StockReserved", "TEE-1"): 1,
            ("StockReleased", "MUG-1"): 1,
            ("StockReleased", "TEE-1"): 1,
        }
    )
    for sku, on_hand in stock.items():
        product = await load_product(services, sku)
        assert (product.on_hand, product.reserved, product.sold, product.reservations) == (
            on_hand,
            0,
            0,
            {},
        )
    assert f"charge:{order_id}" not in await captures(services.write)


async def test_a_product_discontinued_after_the_order_was_placed_rejects_it(
    services: Services, settings: Settings
) -> None:
    """The order is placed, then (before the process manager reserves) one of its products is
    discontinued: the order is rejected with product_discontinued and the other line released."""
    await create_products(services, ADMIN, {"MUG-1": 10, "TEE-1": 10})
    async with running_workers(settings, ["commands", "projector", "notifier"]):
        command_id = await place_order(services, ALICE, {"MUG-1": 1, "TEE-1": 1})
        order_id = await order_id_of(services, command_id)
        await wait_order_status(services, order_id, ["placed"])
        reply = await services.intake.submit(DiscontinueProduct("TEE-1"), ADMIN)
        assert reply.status_code == 200, reply
        async with running_workers(settings, ["process"], owner="late"):
            status = await wait_final(services, command_id)
            await wait_idle(services, pipeline_groups(settings))

    assert status.error is not None and status.error.code == "product_discontinued", status
    assert (await load_order(services, order_id)).reason == "product_discontinued"
    assert await stock_moves(services, order_id) == Counter(
        {
            ("StockReserved", "MUG-1"): 1,
            ("StockReleased", "MUG-1"): 1,
        }
    )
    mug = await load_product(services, "MUG-1")
    assert (mug.on_hand, mug.reserved, mug.reservations) == (10, 0, {})


async def test_an_order_for_an_unknown_or_discontinued_product_is_never_placed(
    services: Services, settings: Settings
) -> None:
    """PlaceOrder naming a sku that does not exist, or one discontinued already, fails with
    unknown_product / product_discontinued: no order, no event, no reservation."""
    await create_products(services, ADMIN, {"MUG-1": 10, "OLD-1": 10})
    assert (await services.intake.submit(DiscontinueProduct("OLD-1"), ADMIN)).status_code == 200
    async with running_workers(settings):
        unknown = await place_order(services, ALICE, {"MUG-1": 1, "NOPE-1": 1})
        retired = await place_order(services, ALICE, {"OLD-1": 1})
        outcomes = [await wait_final(services, c) for c in (unknown, retired)]
        await wait_idle(services, pipeline_groups(settings))

    assert [(o.status, o.error.code if o.error else None) for o in outcomes] == [
        ("failed", "unknown_product"),
        ("failed", "product_discontinued"),
    ]
    refused_steps = ["accepted", "failed"]  # refused in the worker's first commit: fast
    assert [[s.name for s in o.steps] for o in outcomes] == [refused_steps] * 2
    events = await domain_events(services.write, settings.partitions)
    assert [e.type for e in events if e.aggregate == "order"] == []
    assert (await load_product(services, "MUG-1")).reservations == {}
