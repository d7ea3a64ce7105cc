"""Two customers race for the last unit of a product: it is sold exactly once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from app.aggregates import PRODUCT
from app.config import Settings
from app.kernel import keys
from app.kernel.partitions import partition_of
from app.queries import catalog
from app.services import Services
from tests.integration.conftest import ADMIN, ALICE, BOB, running_workers
from tests.support.orders_helpers import (
    command_status,
    create_products,
    domain_events,
    load_order,
    load_product,
    order_ids,
    payload,
    pipeline_groups,
    place_order,
    wait_all_final,
    wait_idle,
)

CONTENDERS = 24


@contextlib.asynccontextmanager
async def stock_sampler(services: Services, sku: str) -> AsyncIterator[list[tuple[int, int]]]:
    """Reads the product's (on_hand, reserved) from the write model as fast as it can."""
    samples: list[tuple[int, int]] = []
    key = keys.aggregate(partition_of(sku, services.settings.partitions), PRODUCT.name, sku)
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            raw = await services.write.hget(key, "s")
            if raw:
                product = PRODUCT.decoder.decode(raw)
                samples.append((product.on_hand, product.reserved))
            await asyncio.sleep(0.001)

    task = asyncio.create_task(sample())
    try:
        yield samples
    finally:
        done.set()
        await task


async def test_only_one_of_many_racing_orders_gets_the_last_unit(
    services: Services, settings: Settings
) -> None:
    """Exactly one order is confirmed; every other PlaceOrder fails with insufficient_stock;
    available stock is never negative at any sampled moment; the unit is sold once."""
    await create_products(services, ADMIN, {"LAST-1": 1})
    async with stock_sampler(services, "LAST-1") as samples, running_workers(settings):
        senders = {}
        command_ids = await asyncio.gather(
            *(
                place_order(services, ALICE if n % 2 else BOB, {"LAST-1": 1})
                for n in range(CONTENDERS)
            )
        )
        for n, command_id in enumerate(command_ids):
            senders[command_id] = "alice" if n % 2 else "bob"
        outcome = await wait_all_final(services, command_ids, within=60)
        await wait_idle(services, pipeline_groups(settings))

    winners = [cid for cid, status in outcome.items() if status == "succeeded"]
    assert len(winners) == 1, outcome
    for command_id in command_ids:
        view = await command_status(services, command_id)
        if command_id in winners:
            assert view.error is None
            continue
        assert view.status == "failed" and view.error is not None, view
        assert (view.error.code, view.error.status) == ("insufficient_stock", 409), view.error

    ids = await order_ids(services)
    placed = {ids[cid]: cid for cid in command_ids}
    for order_id, command_id in placed.items():
        order = await load_order(services, order_id)
        assert order.customer == senders[command_id]
        if command_id in winners:
            assert order.status == "confirmed"
        else:
            assert (order.status, order.reason) == ("rejected", "insufficient_stock")

    product = await load_product(services, "LAST-1")
    assert (product.on_hand, product.reserved, product.sold) == (0, 0, 1)
    assert product.reservations == {}
    shown = await catalog.get_product(services.read_side, "LAST-1")
    assert shown is not None and (shown.available, shown.sold) == (0, 1)

    stock_events = [
        (e.type, payload(e)["order_id"])
        for e in await domain_events(services.write, settings.partitions)
        if e.aggregate == "product" and e.type != "ProductCreated"
    ]
    winner_order = next(o for o, c in placed.items() if c in winners)
    assert sorted(stock_events) == [
        ("StockCommitted", winner_order),
        ("StockReserved", winner_order),
    ]

    assert len(samples) > 20, "the sampler saw too little to prove anything"
    assert all(reserved >= 0 and on_hand - reserved >= 0 for on_hand, reserved in samples), [
        s for s in samples if s[1] < 0 or s[0] - s[1] < 0
    ]
    assert samples[0] == (1, 0) and samples[-1] == (0, 0)
