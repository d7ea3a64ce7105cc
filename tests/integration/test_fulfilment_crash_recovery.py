"""The fulfilment process manager crashes mid-order; a successor finishes it exactly once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings
from app.domain.products import ReserveStock
from app.kernel import keys
from app.kernel.consumer import ensure_group
from app.kernel.leases import Leases
from app.kernel.messages import SYSTEM
from app.kernel.partitions import partition_of
from app.kernel.redis_types import stream_entries
from app.processes.fulfilment import GROUP
from app.services import Services
from tests.integration.conftest import ADMIN, ALICE, running_workers
from tests.support.orders_helpers import (
    captures,
    command_status,
    create_products,
    domain_events,
    integration_events,
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
from tests.support.polling import eventually
from tests.support.processes import ProcessGroup
from tests.support.stores import store_env

STOCK = {"MUG-1": 10, "TEE-1": 5, "BOOK-1": 3}
LINES = {"MUG-1": 2, "TEE-1": 1, "BOOK-1": 3}
STEPS = ["accepted", "processing", "stock_reserved", "payment_captured", "succeeded"]
KINDS = ("commands", "projector", "process")
# the charge step takes 4-12 s (two legs of 2-6 s), so a kill lands inside it
SLOW_GATEWAY = {"PAYMENT_LATENCY_MS": "4000", "PAYMENT_TIMEOUT_MS": "60000"}


@pytest.fixture
def processes(log_dir: Path, redis_url: str) -> Iterator[ProcessGroup]:
    group = ProcessGroup(
        log_dir,
        {
            **store_env(redis_url),
            "APP_ENV": "test",
            "PARTITIONS": "4",
            "PAYMENT_FAILURE_RATE": "0",
            "LOG_LEVEL": "INFO",
        },
    )
    try:
        yield group
    finally:
        group.stop_all()


async def assert_fulfilled_once(services: Services, command_id: str, order_id: str) -> None:
    """Confirmed; every step, event and capture happened exactly once."""
    status = await command_status(services, command_id)
    assert status.status == "succeeded", status
    assert [step.name for step in status.steps] == STEPS
    order = await load_order(services, order_id)
    assert order.status == "confirmed"
    partitions = services.settings.partitions
    of_order = Counter(
        (e.type, payload(e).get("sku"))
        for e in await domain_events(services.write, partitions)
        if payload(e).get("order_id") == order_id
    )
    expected: dict[tuple[str, str | None], int] = {
        ("OrderPlaced", None): 1,
        ("OrderStockReserved", None): 1,
        ("OrderPaid", None): 1,
        ("OrderConfirmed", None): 1,
        **{("StockReserved", sku): 1 for sku in LINES},
        **{("StockCommitted", sku): 1 for sku in LINES},
    }
    assert of_order == Counter(expected), of_order
    published = [
        e for e in await integration_events(services.write, partitions) if e["order_id"] == order_id
    ]
    assert [e["type"] for e in published] == ["OrderConfirmed"]
    assert (await captures(services.write)) == {f"charge:{order_id}": 1}
    for sku, on_hand in STOCK.items():
        product = await load_product(services, sku)
        assert (product.on_hand, product.reserved, product.sold, product.reservations) == (
            on_hand - LINES[sku],
            0,
            LINES[sku],
            {},
        )


async def fulfilment_leases(services: Services) -> int:
    found = [
        await services.write.exists(keys.lease(GROUP, p))
        for p in range(services.settings.partitions)
    ]
    return sum(found)


@pytest.mark.parametrize(
    "moment", ["before_the_gateway_recorded_it", "after_the_gateway_recorded_it"]
)
async def test_a_process_worker_killed_during_the_charge_is_replaced_and_charges_once(
    services: Services, settings: Settings, processes: ProcessGroup, moment: str
) -> None:
    """SIGKILL the process worker while it waits on a slow gateway (before it recorded the
    charge, or after, with the answer still on its way); a new worker takes the partition over
    when the lease runs out, and the order ends confirmed with one capture and one of each
    event."""
    await create_products(services, ADMIN, STOCK)
    async with running_workers(settings, ["commands", "projector"]):
        first = processes.start("process", "workers.process", extra_env=SLOW_GATEWAY)
        await eventually(
            lambda: fulfilment_leases(services),
            until=lambda n: n == 4,
            timeout=30,
            message="first worker owns every partition",
        )
        command_id = await place_order(services, ALICE, LINES)
        order_id = await order_id_of(services, command_id)
        await wait_order_status(services, order_id, ["reserved"])
        if moment == "after_the_gateway_recorded_it":
            await eventually(
                lambda: captures(services.write),
                until=lambda c: f"charge:{order_id}" in c,
                timeout=30,
                message="charge recorded",
            )
        first.kill()

        expected_captures = 1 if moment == "after_the_gateway_recorded_it" else 0
        assert (await captures(services.write)).get(f"charge:{order_id}", 0) == expected_captures
        assert (await load_order(services, order_id)).status == "reserved", "killed mid-charge"

        processes.start("process", "workers.process", extra_env={"PAYMENT_LATENCY_MS": "0"})
        status = await wait_final(services, command_id, within=90)
        assert status.status == "succeeded", (status, processes.logs())
        await wait_idle(services, pipeline_groups(settings, KINDS))
    await assert_fulfilled_once(services, command_id, order_id)


async def test_a_worker_that_died_half_way_through_reserving_is_finished_by_its_successor(
    services: Services, settings: Settings
) -> None:
    """A crashed worker had read OrderPlaced, reserved two lines of three (with the process's
    own step commands) and died holding the partition's lease: its successor re-reads the
    pending event, reserves only what is missing, and completes the order exactly once."""
    await create_products(services, ADMIN, STOCK)
    partitions = settings.partitions
    async with running_workers(settings, ["commands", "projector"]):
        command_id = await place_order(services, ALICE, LINES)
        order_id = await order_id_of(services, command_id)
        await wait_order_status(services, order_id, ["placed"])

        # the crashed worker: it owned the partition, read the event, reserved two lines
        partition = partition_of(order_id, partitions)
        stream = keys.events(partition)
        await ensure_group(services.write, stream, GROUP)
        assert await Leases(services.write, "crashed", ttl_ms=1500).acquire(GROUP, partition)
        delivered = await services.write.xreadgroup(GROUP, f"p{partition}", {stream: ">"})
        read = [fields["e"] for _stream, _id, fields in stream_entries(delivered)]
        assert any('"OrderPlaced"' in event for event in read)
        for sku in ("MUG-1", "TEE-1"):
            envelope = services.bus.envelope(
                ReserveStock(sku, order_id, LINES[sku]),
                SYSTEM,
                base_id=f"{order_id}.reserve.{sku}",
                internal=True,
            )
            assert (await services.bus.execute(envelope)).error is None
        assert (await load_product(services, "BOOK-1")).reserved == 0

        async with running_workers(settings, ["process"], owner="successor"):
            status = await wait_final(services, command_id, within=60)
            await wait_idle(services, pipeline_groups(settings, KINDS))
    assert status.status == "succeeded", status
    await assert_fulfilled_once(services, command_id, order_id)
