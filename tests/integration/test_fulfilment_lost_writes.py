"""Whatever a failover lost, no order stays stuck and the stock matches the orders.

Each test makes, by hand, the state a failover to a lagging replica leaves behind
(tests/support/lost_writes.py): a write the fulfilment process already acted on is gone
from one partition while the others keep theirs. The process (with its sweeper looking at
orders quiet for 1 s) must notice it from the aggregates' state and resolve it:

* the order's partition lost OrderStockReserved after the process was done with OrderPlaced:
  its PlaceOrder stays `processing` and no event will come — the sweeper drives it on;
* a product's partition lost the hold the order's MarkOrderReserved relied on: CommitStock
  finds no reservation and sells the units from what is available — or, when they are gone,
  the paid order is cancelled and refunded;
* a product's partition lost the sale (or the release) of an order that has ended: the
  sweeper finds the step's dedup record missing and runs it again;
* the order's partition lost the whole order after the process held its stock: the hold,
  tracked in its product's partition's running index, is released by the sweeper; and a
  sale lost after the order was settled comes back as its hold, whose entry the sweeper
  then settles by selling it again; and when that partition (or the order's) goes back to
  before the sale (or the confirmation) between the sweeper's reads and its removal of the
  entry, the entry stays, and the sweeper finds what is missing;
* the order's partition lost MarkOrderPaid after the process had moved on: ConfirmOrder is
  refused "not yet", which is not recorded, so the same step confirms it once the sweeper
  has driven the order on again;
* and the race of a charge with no answer and a cancel: the money goes back once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.aggregates import ORDER, PRODUCT
from app.config import Settings
from app.domain import orders as o
from app.domain import products as p
from app.kernel import keys
from app.kernel.messages import SYSTEM, Outcome
from app.kernel.partitions import command_id_for, partition_of
from app.kernel.running import RunningCommands
from app.processes.fulfilment import GROUP as FULFILMENT_GROUP
from app.processes.fulfilment import Fulfilment
from app.processes.fulfilment_sweep import FulfilmentSweep
from app.services import Services, build_services
from tests.integration.conftest import ADMIN, ALICE, BOB, make_settings, running_workers
from tests.support.lost_writes import entries_of, lose, snapshot
from tests.support.orders_helpers import (
    AFTER_RECORDING,
    ANSWER,
    BEFORE_RECORDING,
    DECLINED_CARD,
    FAIL,
    ScriptedRandom,
    captures,
    create_products,
    domain_events,
    load_order,
    load_product,
    order_id_of,
    payload,
    place_order,
    refunds,
    running_fulfilment,
    wait_final,
    wait_order_status,
)
from tests.support.polling import eventually

MUG = "MUG-LOST"
GATE = keys.external("gateway", "gate")


def lossy_settings(redis_url: str, **overrides: str) -> Settings:
    return make_settings(
        redis_url, **{"PAYMENT_GATE": "1", "SWEEP_AFTER_SECONDS": "1", **overrides}
    )


def step_record(services: Services, order_id: str, step: str, aggregate_id: str) -> str:
    """The dedup record of one of the process's steps (its id derives from order and step)."""
    partition = partition_of(aggregate_id, services.settings.partitions)
    return keys.dedup(partition, command_id_for(partition, f"{order_id}.{step}"))


def order_key(services: Services, order_id: str) -> str:
    partition = partition_of(order_id, services.settings.partitions)
    return keys.aggregate(partition, ORDER.name, order_id)


def product_key(services: Services, sku: str) -> str:
    return keys.aggregate(partition_of(sku, services.settings.partitions), PRODUCT.name, sku)


def events_of(services: Services, aggregate_id: str) -> str:
    return keys.events(partition_of(aggregate_id, services.settings.partitions))


async def stock(services: Services, sku: str) -> tuple[int, int, int, dict[str, int]]:
    product = await load_product(services, sku)
    return product.on_hand, product.reserved, product.sold, product.reservations


async def running_count(services: Services) -> int:
    total = 0
    for partition in range(services.settings.partitions):
        total += int(await services.write.zcard(keys.running(partition)))
    return total


async def stock_moves(services: Services, order_id: str) -> list[str]:
    return sorted(
        e.type
        for e in await domain_events(services.write, services.settings.partitions)
        if e.aggregate == "product" and payload(e).get("order_id") == order_id
    )


async def placed_and_held(services: Services, quantities: Mapping[str, int]) -> tuple[str, str]:
    """PlaceOrder accepted, its stock held, its charge waiting at the closed gate."""
    command_id = await place_order(services, ALICE, quantities)
    order_id = await order_id_of(services, command_id)
    await wait_order_status(services, order_id, ["reserved"])
    return command_id, order_id


async def test_an_order_whose_reserved_event_was_lost_is_driven_on_by_the_sweeper(
    redis_url: str,
) -> None:
    """The process reserved the stock and was done with OrderPlaced (acknowledged), but the
    order's partition lost OrderStockReserved: nothing will ever deliver the next step."""
    settings = lossy_settings(redis_url)
    services = build_services(settings)
    try:
        await services.write.set(GATE, "open")
        await create_products(services, ADMIN, {MUG: 10})
        async with running_workers(settings, ["commands"]):
            command_id = await place_order(services, ALICE, {MUG: 2})
            order_id = await order_id_of(services, command_id)
            await wait_order_status(services, order_id, ["placed"])
        # what the process did before the failover: the hold, and OrderPlaced acknowledged
        hold = services.bus.envelope(
            p.ReserveStock(MUG, order_id, 2),
            SYSTEM,
            base_id=f"{order_id}.reserve.{MUG}",
            internal=True,
        )
        assert (await services.bus.execute(hold)).error is None
        await services.write.xgroup_create(events_of(services, order_id), FULFILMENT_GROUP, "$")
        # ... and MarkOrderReserved's commit is what the order's partition lost

        async with running_workers(settings, ["commands", "process"]):
            status = await wait_final(services, command_id)
            await eventually(
                lambda: running_count(services), until=lambda n: n == 0, message="settled"
            )
        assert status.status == "succeeded", status
        assert (await load_order(services, order_id)).status == "confirmed"
        assert await stock(services, MUG) == (8, 0, 2, {})
        assert await stock_moves(services, order_id) == ["StockCommitted", "StockReserved"]
        assert (await captures(services.write))[f"charge:{order_id}"] == 1
    finally:
        await services.close()


async def test_a_hold_whose_order_was_lost_is_released_and_leaves_the_running_index(
    redis_url: str,
) -> None:
    """The process read OrderPlaced and held the stock, then the order's partition lost the
    whole order (its OrderPlaced, its state, PlaceOrder's records): nothing on that partition
    remembers it. The hold is among its product's partition's running commands since it
    landed, so the sweeper finds it, finds no order, releases it and removes its entry."""
    settings = lossy_settings(redis_url)
    services = build_services(settings)
    try:
        await services.write.set(GATE, "open")
        await create_products(services, ADMIN, {MUG: 10})
        async with running_workers(settings, ["commands"]):
            command_id = await place_order(services, ALICE, {MUG: 2})
            order_id = await order_id_of(services, command_id)
            await wait_order_status(services, order_id, ["placed"])
        # what the process did before the failover: OrderPlaced acknowledged, the stock held
        await services.write.xgroup_create(events_of(services, order_id), FULFILMENT_GROUP, "$")
        hold = services.bus.envelope(
            p.ReserveStock(MUG, order_id, 2),
            SYSTEM,
            base_id=f"{order_id}.reserve.{MUG}",
            internal=True,
        )
        assert (await services.bus.execute(hold)).error is None
        held_in = keys.running(partition_of(MUG, settings.partitions))
        assert await services.write.zscore(held_in, hold.command_id) is not None
        # ... and the order's partition loses everything about the order
        order_partition = partition_of(order_id, settings.partitions)
        never_written = await snapshot(settings, [order_key(services, order_id)])
        never_written.kept[order_key(services, order_id)] = None
        await lose(
            settings,
            never_written,
            records=[
                keys.dedup(order_partition, command_id),
                keys.command_status(order_partition, command_id),
                keys.command_steps(order_partition, command_id),
            ],
            entries=await entries_of(
                services.write, events_of(services, order_id), "OrderPlaced", order_id
            ),
        )
        await services.write.zrem(keys.running(order_partition), command_id)
        assert await services.bus.load(ORDER, order_id) is None
        assert await stock(services, MUG) == (10, 2, 0, {order_id: 2})

        async with running_workers(settings, ["commands", "process"]):
            await eventually(
                lambda: stock(services, MUG),
                until=lambda found: found == (10, 0, 0, {}),
                message="the lost order's hold released",
            )
            await eventually(
                lambda: running_count(services), until=lambda n: n == 0, message="settled"
            )
        assert await stock_moves(services, order_id) == ["StockReleased", "StockReserved"]
        assert await services.write.exists(step_record(services, order_id, f"release.{MUG}", MUG))
    finally:
        await services.close()


async def test_a_step_refused_because_its_order_was_set_back_is_taken_again_later(
    redis_url: str,
) -> None:
    """The process charged, MarkOrderPaid landed, the units were sold — and then the order's
    partition lost MarkOrderPaid: ConfirmOrder finds the order only reserved. That refusal
    ("not yet") is not recorded, so once the sweeper has driven the order on again (the same
    charge, MarkOrderPaid anew), the same ConfirmOrder step confirms it."""
    settings = lossy_settings(redis_url)
    services = build_services(settings)

    async def step(command: Any, order_id: str, name: str) -> Outcome:
        envelope = services.bus.envelope(
            command, SYSTEM, base_id=f"{order_id}.{name}", internal=True
        )
        return await services.bus.execute(envelope)

    try:
        await services.write.set(GATE, "open")
        await create_products(services, ADMIN, {MUG: 10})
        async with running_workers(settings, ["commands"]):
            command_id = await place_order(services, ALICE, {MUG: 2})
            order_id = await order_id_of(services, command_id)
            await wait_order_status(services, order_id, ["placed"])
        await services.write.xgroup_create(events_of(services, order_id), FULFILMENT_GROUP, "$")
        # the process's steps, by hand, up to the payment
        assert (
            await step(p.ReserveStock(MUG, order_id, 2), order_id, f"reserve.{MUG}")
        ).error is None
        assert (await step(o.MarkOrderReserved(order_id), order_id, "reserved")).error is None
        order = await load_order(services, order_id)
        charge = await services.gateway.charge(
            f"charge:{order_id}", order.card_token, order.total_cents
        )
        reserved = await snapshot(settings, [order_key(services, order_id)])
        assert (
            await step(o.MarkOrderPaid(order_id, charge.charge_id), order_id, "paid")
        ).error is None
        # ... which the order's partition loses; the process goes on selling and confirming
        await lose(
            settings,
            reserved,
            records=[step_record(services, order_id, "paid", order_id)],
            entries=await entries_of(
                services.write, events_of(services, order_id), "OrderPaid", order_id
            ),
        )
        sold = await step(p.CommitStock(MUG, order_id, 2), order_id, f"commit.{MUG}")
        assert sold.error is None
        refused = await step(o.ConfirmOrder(order_id), order_id, "confirm")
        assert refused.error is not None and refused.error.code == "order_not_paid"
        assert not await services.write.exists(step_record(services, order_id, "confirm", order_id))

        async with running_workers(settings, ["commands", "process"]):
            status = await wait_final(services, command_id)
            await eventually(
                lambda: running_count(services), until=lambda n: n == 0, message="settled"
            )
        assert status.status == "succeeded", status
        assert (await load_order(services, order_id)).status == "confirmed"
        assert await stock(services, MUG) == (8, 0, 2, {})
        assert (await captures(services.write))[f"charge:{order_id}"] == 1
    finally:
        await services.close()


async def test_a_hold_lost_on_the_products_partition_is_sold_from_what_is_available(
    redis_url: str,
) -> None:
    settings = lossy_settings(redis_url)
    services = build_services(settings)
    try:
        await services.write.set(GATE, "closed")
        await create_products(services, ADMIN, {MUG: 10})
        before_the_hold = await snapshot(settings, [product_key(services, MUG)])
        async with running_workers(settings, ["commands", "process"]):
            command_id, order_id = await placed_and_held(services, {MUG: 2})
            await lose(
                settings,
                before_the_hold,
                records=[step_record(services, order_id, f"reserve.{MUG}", MUG)],
                entries=await entries_of(
                    services.write, events_of(services, MUG), "StockReserved", order_id
                ),
            )
            assert await stock(services, MUG) == (10, 0, 0, {})
            await services.write.set(GATE, "open")
            status = await wait_final(services, command_id)
        assert status.status == "succeeded", status
        assert await stock(services, MUG) == (8, 0, 2, {})
        assert await stock_moves(services, order_id) == ["StockCommitted"]
    finally:
        await services.close()


async def test_a_paid_order_whose_lost_hold_cannot_be_sold_again_is_cancelled_and_refunded(
    redis_url: str,
) -> None:
    """The hold is lost and, meanwhile, another order took the last units: the paid order is
    cancelled by the process and its money given back; nothing is sold or returned twice."""
    settings = lossy_settings(redis_url)
    services = build_services(settings)
    try:
        await services.write.set(GATE, "closed")
        await create_products(services, ADMIN, {MUG: 2})
        before_the_hold = await snapshot(settings, [product_key(services, MUG)])
        async with running_workers(settings, ["commands", "process"]):
            lost_id, lost_order = await placed_and_held(services, {MUG: 2})
            await lose(
                settings,
                before_the_hold,
                records=[step_record(services, lost_order, f"reserve.{MUG}", MUG)],
                entries=await entries_of(
                    services.write, events_of(services, MUG), "StockReserved", lost_order
                ),
            )
            other_id = await place_order(services, BOB, {MUG: 2})
            other_order = await order_id_of(services, other_id)
            await wait_order_status(services, other_order, ["reserved"])
            await services.write.set(GATE, "open")
            lost, other = await wait_final(services, lost_id), await wait_final(services, other_id)
            await eventually(
                lambda: refunds(services.write),
                until=lambda found: f"refund:{lost_order}" in found,
                message="the cancelled order's refund",
            )
        assert other.status == "succeeded", other
        assert lost.status == "failed" and lost.error is not None, lost
        assert lost.error.code == "order_cancelled"
        order = await load_order(services, lost_order)
        assert (order.status, order.reason.startswith("Its stock could not be held")) == (
            "cancelled",
            True,
        )
        assert await stock(services, MUG) == (0, 0, 2, {})
        assert await stock_moves(services, lost_order) == []  # nothing sold, nothing returned
        assert (await captures(services.write))[f"charge:{lost_order}"] == 1
        assert [k for k in await refunds(services.write) if lost_order in k] == [
            f"refund:{lost_order}"
        ]
    finally:
        await services.close()


async def test_a_sale_lost_after_the_order_was_confirmed_is_made_again_by_the_sweeper(
    redis_url: str,
) -> None:
    settings = lossy_settings(redis_url)
    services = build_services(settings)
    try:
        await services.write.set(GATE, "closed")
        await create_products(services, ADMIN, {MUG: 10})
        async with running_workers(settings, ["commands", "process"]):
            command_id, order_id = await placed_and_held(services, {MUG: 2})
            held = await snapshot(settings, [product_key(services, MUG)])
            await services.write.set(GATE, "open")
            assert (await wait_final(services, command_id)).status == "succeeded"
            await lose(
                settings,
                held,
                records=[step_record(services, order_id, f"commit.{MUG}", MUG)],
                entries=await entries_of(
                    services.write, events_of(services, MUG), "StockCommitted", order_id
                ),
            )
            assert await stock(services, MUG) == (10, 2, 0, {order_id: 2})  # a leaked hold
            await eventually(
                lambda: stock(services, MUG),
                until=lambda found: found == (8, 0, 2, {}),
                message="the sale made again",
            )
            await eventually(
                lambda: running_count(services), until=lambda n: n == 0, message="settled"
            )
        assert await stock_moves(services, order_id) == ["StockCommitted", "StockReserved"]
    finally:
        await services.close()


async def test_a_sale_lost_after_the_order_was_settled_is_made_again_from_its_hold(
    redis_url: str,
) -> None:
    """The sweeper had settled the confirmed order (its sale was there) when the product's
    partition lost the sale: that partition goes back to the hold and the hold's running
    entry, which the sweeper then finds with its order ended and the sale's record missing."""
    settings = lossy_settings(redis_url)
    services = build_services(settings)
    try:
        await services.write.set(GATE, "closed")
        await create_products(services, ADMIN, {MUG: 10})
        product_partition = partition_of(MUG, settings.partitions)
        async with running_workers(settings, ["commands", "process"]):
            command_id, order_id = await placed_and_held(services, {MUG: 2})
            held = await snapshot(
                settings, [product_key(services, MUG), keys.running(product_partition)]
            )
            await services.write.set(GATE, "open")
            assert (await wait_final(services, command_id)).status == "succeeded"
            await eventually(
                lambda: running_count(services), until=lambda n: n == 0, message="settled"
            )
            await lose(
                settings,
                held,
                records=[step_record(services, order_id, f"commit.{MUG}", MUG)],
                entries=await entries_of(
                    services.write, events_of(services, MUG), "StockCommitted", order_id
                ),
            )
            # only the hold's entry comes back (not the order's, were they in one partition)
            await services.write.zrem(keys.running(product_partition), command_id)
            assert await stock(services, MUG) == (10, 2, 0, {order_id: 2})
            assert await running_count(services) == 1
            await eventually(
                lambda: stock(services, MUG),
                until=lambda found: found == (8, 0, 2, {}),
                message="the sale made again",
            )
            await eventually(
                lambda: running_count(services), until=lambda n: n == 0, message="settled"
            )
        assert await stock_moves(services, order_id) == ["StockCommitted", "StockReserved"]
    finally:
        await services.close()


async def test_a_hold_settled_across_a_failover_comes_back_with_its_entry(
    redis_url: str,
) -> None:
    """The sweeper read the sale's record on the product's partition and judged the hold
    settled; then that partition failed over to a replica that never got the sale, and only
    then did the sweeper's removal of the hold's entry land (its write retried onto the new
    master). The removal must not take the entry of a hold whose sale is not there: the
    sweeper finds the hold again and sells it."""
    settings = lossy_settings(redis_url, SWEEP_AFTER_SECONDS="600")
    services = build_services(settings)
    product_partition = partition_of(MUG, settings.partitions)
    try:
        await services.write.set(GATE, "closed")
        await create_products(services, ADMIN, {MUG: 10})
        async with running_workers(settings, ["commands", "process"]):
            command_id, order_id = await placed_and_held(services, {MUG: 2})
            held = await snapshot(
                settings, [product_key(services, MUG), keys.running(product_partition)]
            )
            await services.write.set(GATE, "open")
            assert (await wait_final(services, command_id)).status == "succeeded"
        sale = step_record(services, order_id, f"commit.{MUG}", MUG)
        sold_entries = await entries_of(
            services.write, events_of(services, MUG), "StockCommitted", order_id
        )
        failed_over: list[bool] = []

        class FailingOverMidSweep(RunningCommands):
            async def update(self, *args: Any, **kwargs: Any) -> int:
                if not failed_over:  # between the sweep's reads and its write
                    failed_over.append(True)
                    await lose(settings, held, records=[sale], entries=sold_entries)
                return await super().update(*args, **kwargs)

        sweeper = FulfilmentSweep(
            Fulfilment(services.bus, services.gateway),
            services.bus,
            FailingOverMidSweep(services.write, settings.status_ttl_seconds),
            quiet_seconds=0,
        )
        await sweeper.sweep(product_partition)
        assert failed_over
        assert await stock(services, MUG) == (10, 2, 0, {order_id: 2})  # the sale lost
        hold = command_id_for(product_partition, f"{order_id}.reserve.{MUG}")
        assert await services.write.zscore(keys.running(product_partition), hold) is not None

        async with running_workers(lossy_settings(redis_url), ["commands", "process"]):
            await eventually(
                lambda: stock(services, MUG),
                until=lambda found: found == (8, 0, 2, {}),
                message="the sale made again",
            )
            await eventually(
                lambda: running_count(services), until=lambda n: n == 0, message="settled"
            )
        assert await stock_moves(services, order_id) == ["StockCommitted", "StockReserved"]
    finally:
        await services.close()


async def test_an_order_settled_across_a_failover_comes_back_with_its_entry(
    redis_url: str,
) -> None:
    """The same on the order's partition: the sweeper read the order confirmed, then that
    partition went back to the order paid (ConfirmOrder lost) before the entry's removal
    landed. The entry stays, so the sweeper drives the order on and confirms it."""
    settings = lossy_settings(redis_url, SWEEP_AFTER_SECONDS="600")
    services = build_services(settings)

    async def step(command: Any, order_id: str, name: str) -> Outcome:
        envelope = services.bus.envelope(
            command, SYSTEM, base_id=f"{order_id}.{name}", internal=True
        )
        return await services.bus.execute(envelope)

    try:
        await services.write.set(GATE, "open")
        await create_products(services, ADMIN, {MUG: 10})
        async with running_workers(settings, ["commands"]):
            command_id = await place_order(services, ALICE, {MUG: 2})
            order_id = await order_id_of(services, command_id)
            await wait_order_status(services, order_id, ["placed"])
        await services.write.xgroup_create(events_of(services, order_id), FULFILMENT_GROUP, "$")
        # the process's steps, by hand, up to the sale
        for command, name in [
            (p.ReserveStock(MUG, order_id, 2), f"reserve.{MUG}"),
            (o.MarkOrderReserved(order_id), "reserved"),
        ]:
            assert (await step(command, order_id, name)).error is None
        order = await load_order(services, order_id)
        charge = await services.gateway.charge(
            f"charge:{order_id}", order.card_token, order.total_cents
        )
        for command, name in [
            (o.MarkOrderPaid(order_id, charge.charge_id), "paid"),
            (p.CommitStock(MUG, order_id, 2), f"commit.{MUG}"),
        ]:
            assert (await step(command, order_id, name)).error is None
        order_partition = partition_of(order_id, settings.partitions)
        paid = await snapshot(
            settings,
            [
                order_key(services, order_id),
                keys.command_status(order_partition, command_id),
                keys.command_steps(order_partition, command_id),
                keys.running(order_partition),
            ],
        )
        assert (await step(o.ConfirmOrder(order_id), order_id, "confirm")).error is None
        assert (await wait_final(services, command_id)).status == "succeeded"
        confirm = step_record(services, order_id, "confirm", order_id)
        confirmed = await entries_of(
            services.write, events_of(services, order_id), "OrderConfirmed", order_id
        )
        failed_over: list[bool] = []

        class FailingOverMidSweep(RunningCommands):
            async def update(self, *args: Any, **kwargs: Any) -> int:
                if not failed_over:  # between the sweep's reads and its write
                    failed_over.append(True)
                    await lose(settings, paid, records=[confirm], entries=confirmed)
                return await super().update(*args, **kwargs)

        sweeper = FulfilmentSweep(
            Fulfilment(services.bus, services.gateway),
            services.bus,
            FailingOverMidSweep(services.write, settings.status_ttl_seconds),
            quiet_seconds=0,
        )
        await sweeper.sweep(order_partition)
        assert failed_over
        assert (await load_order(services, order_id)).status == "paid"
        assert await services.write.zscore(keys.running(order_partition), command_id) is not None

        async with running_workers(lossy_settings(redis_url), ["commands", "process"]):
            assert (await wait_final(services, command_id)).status == "succeeded"
            await eventually(
                lambda: running_count(services), until=lambda n: n == 0, message="settled"
            )
        assert (await load_order(services, order_id)).status == "confirmed"
        assert await stock(services, MUG) == (8, 0, 2, {})
        assert (await captures(services.write))[f"charge:{order_id}"] == 1
    finally:
        await services.close()


async def test_a_release_lost_after_the_order_was_rejected_is_made_again_by_the_sweeper(
    redis_url: str,
) -> None:
    settings = lossy_settings(redis_url)
    services = build_services(settings)
    try:
        await services.write.set(GATE, "closed")
        await create_products(services, ADMIN, {MUG: 10})
        async with running_workers(settings, ["commands", "process"]):
            command_id = await place_order(services, ALICE, {MUG: 2}, DECLINED_CARD)
            order_id = await order_id_of(services, command_id)
            await wait_order_status(services, order_id, ["reserved"])
            held = await snapshot(settings, [product_key(services, MUG)])
            await services.write.set(GATE, "open")
            status = await wait_final(services, command_id)
            assert status.error is not None and status.error.code == "payment_declined"
            await lose(
                settings,
                held,
                records=[step_record(services, order_id, f"release.{MUG}", MUG)],
                entries=await entries_of(
                    services.write, events_of(services, MUG), "StockReleased", order_id
                ),
            )
            assert await stock(services, MUG) == (10, 2, 0, {order_id: 2})
            await eventually(
                lambda: stock(services, MUG),
                until=lambda found: found == (10, 0, 0, {}),
                message="the release made again",
            )
    finally:
        await services.close()


async def test_a_charge_with_no_answer_racing_a_cancel_is_given_back_once(redis_url: str) -> None:
    """The charge waits at the gate; the customer cancels; the charge is then taken but its
    answer lost (PaymentUnavailable): RejectOrder is refused (the order is cancelled), so no
    OrderRejected will ask for the void — the process voids it itself, once."""
    settings = lossy_settings(  # the sweeper would void it too, later: not here
        redis_url, PAYMENT_FAILURE_RATE="0.5", PAYMENT_TIMEOUT_MS="200", SWEEP_AFTER_SECONDS="600"
    )
    services = build_services(settings)
    taken_then_silent = ScriptedRandom(  # the charge's four attempts; every call after answers
        [*(FAIL, AFTER_RECORDING), *(FAIL, BEFORE_RECORDING) * 3], after=ANSWER
    )
    try:
        await services.write.set(GATE, "closed")
        await create_products(services, ADMIN, {MUG: 10})
        async with (
            running_workers(settings, ["commands"]),
            running_fulfilment(settings, taken_then_silent),
        ):
            _, order_id = await placed_and_held(services, {MUG: 2})
            cancelled = await services.intake.submit(o.CancelOrder(order_id, "too slow"), ALICE)
            assert cancelled.status_code == 200, cancelled
            await services.write.set(GATE, "open")
            await eventually(
                lambda: refunds(services.write),
                until=lambda found: f"refund:{order_id}" in found,
                message="the charge given back",
            )
            await eventually(
                lambda: domain_events(services.write, settings.partitions),
                until=lambda events: any(e.type == "OrderRefunded" for e in events),
                message="the order records its refund",
            )
        assert (await captures(services.write))[f"charge:{order_id}"] == 1
        assert [k for k in await refunds(services.write) if order_id in k] == [f"refund:{order_id}"]
        refunded = [
            e
            for e in await domain_events(services.write, settings.partitions)
            if e.type == "OrderRefunded" and payload(e)["order_id"] == order_id
        ]
        assert len(refunded) == 1
        assert (await load_order(services, order_id)).status == "cancelled"
        assert await stock(services, MUG) == (10, 0, 0, {})
    finally:
        await services.close()
