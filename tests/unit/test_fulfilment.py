"""The order fulfilment process manager, given order events: the commands it sends (ids,
types, fields), the gateway calls it makes, and how it compensates.

Its collaborators are in-memory (tests/support/fulfilment_fakes.py): the bus runs each
command's real decide function on aggregates held in a dict and answers a command id it has
run before with its first outcome, as the real bus's dedup record does.
"""

from __future__ import annotations

from typing import Any, cast

import msgspec
import pytest

from app.domain import orders as o
from app.domain import products as p
from app.domain.products import Product
from app.kernel.consumer import Entry
from app.kernel.positions import covering
from app.processes.fulfilment import Fulfilment
from tests.support.fulfilment_fakes import (
    ALICE,
    APPROVED,
    DECLINED,
    SILENT,
    FakeGateway,
    InMemoryBus,
)
from tests.support.projection_harness import entry

ORDER_ID = "o1"
MUG = Product(sku="MUG-001", name="Blue mug", price_cents=1200, on_hand=10)
TEA = Product(sku="TEA-002", name="Green tea", price_cents=350, on_hand=5)
TWO_MUGS_ONE_TEA = {"MUG-001": 2, "TEA-002": 1}
TOTAL = 2 * 1200 + 350


def process(bus: InMemoryBus, gateway: FakeGateway) -> Fulfilment:
    return Fulfilment(cast(Any, bus), cast(Any, gateway))


async def deliver(fulfilment: Fulfilment, *events: msgspec.Struct) -> None:
    """Hand the process these events as its consumer would: entries of one partition."""
    await fulfilment.handle(0, [entry(e, f"{n}-0") for n, e in enumerate(events, start=1)])


def sent_since(bus: InMemoryBus, start: int) -> list[tuple[str, msgspec.Struct]]:
    return bus.steps()[start:]


def reserved_order(bus: InMemoryBus, lines: dict[str, int], token: str) -> list[msgspec.Struct]:
    """An order placed and its stock held, by commands from outside the process (as if an
    earlier owner had done it); the order's events so far."""
    placed = bus.place_order(ORDER_ID, lines, token)
    for sku, quantity in lines.items():
        bus.send(p.ReserveStock(sku, ORDER_ID, quantity))
    return [placed, *bus.send(o.MarkOrderReserved(ORDER_ID))]


# --- an order that goes through ---------------------------------------------------------------


async def test_an_order_placed_is_reserved_line_by_line_then_charged_then_confirmed() -> None:
    bus, gateway = InMemoryBus(MUG, TEA), FakeGateway()
    placed = bus.place_order(ORDER_ID, TWO_MUGS_ONE_TEA, APPROVED)
    await deliver(process(bus, gateway), placed)
    assert bus.steps() == [
        ("o1.reserve.MUG-001", p.ReserveStock("MUG-001", ORDER_ID, 2)),
        ("o1.reserve.TEA-002", p.ReserveStock("TEA-002", ORDER_ID, 1)),
        ("o1.reserved", o.MarkOrderReserved(ORDER_ID)),
        ("o1.paid", o.MarkOrderPaid(ORDER_ID, "ch_1")),
        ("o1.commit.MUG-001", p.CommitStock("MUG-001", ORDER_ID, 2)),
        ("o1.commit.TEA-002", p.CommitStock("TEA-002", ORDER_ID, 1)),
        ("o1.confirm", o.ConfirmOrder(ORDER_ID)),
    ]
    assert gateway.calls == [("charge", "charge:o1", APPROVED, TOTAL)]
    assert bus.state(ORDER_ID).status == "confirmed"
    assert (bus.state("MUG-001").on_hand, bus.state("MUG-001").sold) == (8, 2)


async def test_the_commands_of_one_step_go_out_together_one_per_line() -> None:
    bus = InMemoryBus(MUG, TEA)
    placed = bus.place_order(ORDER_ID, TWO_MUGS_ONE_TEA, APPROVED)
    await deliver(process(bus, FakeGateway()), placed)
    assert bus.batches == [
        ["o1.reserve.MUG-001", "o1.reserve.TEA-002"],
        ["o1.reserved"],
        ["o1.paid"],
        ["o1.commit.MUG-001", "o1.commit.TEA-002"],
        ["o1.confirm"],
    ]


async def test_the_order_moves_on_at_a_position_covering_the_stock_it_took() -> None:
    """So a read of the catalog at the order's position sees the units it holds, or sold."""
    bus = InMemoryBus(MUG, TEA)
    placed = bus.place_order(ORDER_ID, TWO_MUGS_ONE_TEA, APPROVED)
    await deliver(process(bus, FakeGateway()), placed)
    after = {sent.command_id: sent.after for sent in bus.sent}

    def positions(*ids: str) -> str:
        return covering(bus.outcomes[command_id].position for command_id in ids)

    assert after["o1.reserved"] == positions("o1.reserve.MUG-001", "o1.reserve.TEA-002") != ""
    assert after["o1.confirm"] == positions("o1.commit.MUG-001", "o1.commit.TEA-002") != ""


# --- compensation: whatever was held goes back, and the order is rejected with the reason ----


async def test_a_line_short_of_stock_releases_every_line_and_rejects_the_order_with_why() -> None:
    bus, gateway = InMemoryBus(MUG, TEA), FakeGateway()
    placed = bus.place_order(ORDER_ID, {"MUG-001": 2, "TEA-002": 6}, APPROVED)
    await deliver(process(bus, gateway), placed)
    assert bus.steps() == [
        ("o1.reserve.MUG-001", p.ReserveStock("MUG-001", ORDER_ID, 2)),
        ("o1.reserve.TEA-002", p.ReserveStock("TEA-002", ORDER_ID, 6)),
        ("o1.release.MUG-001", p.ReleaseStock("MUG-001", ORDER_ID)),
        ("o1.release.TEA-002", p.ReleaseStock("TEA-002", ORDER_ID)),
        (
            "o1.reject",
            o.RejectOrder(ORDER_ID, "insufficient_stock", "Only 5 of TEA-002 left, 6 asked"),
        ),
    ]
    assert gateway.calls == []  # nothing is charged for an order that cannot be filled
    assert bus.state("MUG-001").reserved == 0
    assert bus.state(ORDER_ID).status == "rejected"


async def test_a_declined_card_releases_the_stock_and_rejects_the_order() -> None:
    bus, gateway = InMemoryBus(MUG, TEA), FakeGateway()
    await deliver(process(bus, gateway), bus.place_order(ORDER_ID, TWO_MUGS_ONE_TEA, DECLINED))
    assert bus.steps()[3:] == [
        ("o1.release.MUG-001", p.ReleaseStock("MUG-001", ORDER_ID)),
        ("o1.release.TEA-002", p.ReleaseStock("TEA-002", ORDER_ID)),
        ("o1.reject", o.RejectOrder(ORDER_ID, "payment_declined", "The card was declined")),
    ]
    assert gateway.calls == [("charge", "charge:o1", DECLINED, TOTAL)]
    assert (bus.state("MUG-001").reserved, bus.state("TEA-002").reserved) == (0, 0)


async def test_a_charge_with_no_answer_releases_the_stock_and_rejects_the_order() -> None:
    bus, gateway = InMemoryBus(MUG, TEA), FakeGateway()
    await deliver(process(bus, gateway), bus.place_order(ORDER_ID, TWO_MUGS_ONE_TEA, SILENT))
    assert bus.steps()[3:] == [
        ("o1.release.MUG-001", p.ReleaseStock("MUG-001", ORDER_ID)),
        ("o1.release.TEA-002", p.ReleaseStock("TEA-002", ORDER_ID)),
        (
            "o1.reject",
            o.RejectOrder(ORDER_ID, "payment_unavailable", "the gateway did not answer"),
        ),
    ]


async def test_that_rejection_voids_whatever_the_unanswered_charge_took() -> None:
    bus, gateway = InMemoryBus(MUG, TEA), FakeGateway()
    fulfilment = process(bus, gateway)
    await deliver(fulfilment, bus.place_order(ORDER_ID, TWO_MUGS_ONE_TEA, SILENT))
    (rejected,) = [e for e in bus.events if isinstance(e, o.OrderRejected)]
    start = len(bus.sent)
    await deliver(fulfilment, rejected)
    assert gateway.calls[-1] == ("void", "charge:o1")
    assert sent_since(bus, start) == [("o1.refunded", o.MarkOrderRefunded(ORDER_ID, "void_ch_1"))]


async def test_a_void_that_finds_no_charge_records_no_refund() -> None:
    bus, gateway = InMemoryBus(MUG, TEA), FakeGateway()
    bus.place_order(ORDER_ID, TWO_MUGS_ONE_TEA, SILENT)
    rejected = o.OrderRejected(ORDER_ID, "alice", "reserved", "payment_unavailable", "")
    await deliver(process(bus, gateway), rejected)
    assert gateway.calls == [("void", "charge:o1")]
    assert bus.sent == []


async def test_a_rejection_for_any_other_reason_calls_nobody() -> None:
    bus, gateway = InMemoryBus(MUG, TEA), FakeGateway()
    bus.place_order(ORDER_ID, TWO_MUGS_ONE_TEA, APPROVED)
    for reason in ("insufficient_stock", "payment_declined", "product_discontinued"):
        await deliver(
            process(bus, gateway), o.OrderRejected(ORDER_ID, "alice", "placed", reason, "")
        )
    assert (bus.sent, gateway.calls) == ([], [])


# --- cancellations --------------------------------------------------------------------------


async def test_an_order_cancelled_before_its_stock_was_held_gets_the_stock_back_at_once() -> None:
    """Reserving succeeds, marking the order reserved does not (it is cancelled): release."""
    bus = InMemoryBus(MUG, TEA)
    placed = bus.place_order(ORDER_ID, TWO_MUGS_ONE_TEA, APPROVED)
    bus.send(o.CancelOrder(ORDER_ID, "changed my mind"), ALICE)
    gateway = FakeGateway()
    await deliver(process(bus, gateway), placed)
    assert [command_id for command_id, _ in bus.steps()] == [
        "o1.reserve.MUG-001",
        "o1.reserve.TEA-002",
        "o1.reserved",
        "o1.release.MUG-001",
        "o1.release.TEA-002",
    ]
    assert bus.outcomes["o1.reserved"].error is not None
    assert gateway.calls == []
    assert (bus.state("MUG-001").reserved, bus.state("TEA-002").reserved) == (0, 0)


async def test_an_order_cancelled_while_it_was_charged_is_refunded() -> None:
    bus = InMemoryBus(MUG, TEA)
    placed = bus.place_order(ORDER_ID, TWO_MUGS_ONE_TEA, APPROVED)
    gateway = FakeGateway(while_charging=lambda: bus.send(o.CancelOrder(ORDER_ID, "no"), ALICE))
    await deliver(process(bus, gateway), placed)
    assert bus.steps()[3:] == [
        ("o1.paid", o.MarkOrderPaid(ORDER_ID, "ch_1")),  # refused: the order is cancelled
        ("o1.refunded", o.MarkOrderRefunded(ORDER_ID, "re_ch_1")),
    ]
    assert gateway.calls[-1] == ("refund", "refund:o1", "ch_1", TOTAL)
    assert bus.outcomes["o1.paid"].error is not None


async def test_a_cancel_before_payment_releases_every_line_and_refunds_nothing() -> None:
    """Cancelled while reserved: a charge may have been out (its answer lost), so whatever it
    took is voided; here it took nothing, so nothing is refunded."""
    bus, gateway = InMemoryBus(MUG, TEA), FakeGateway()
    reserved_order(bus, TWO_MUGS_ONE_TEA, APPROVED)
    (cancelled,) = bus.send(o.CancelOrder(ORDER_ID, "changed my mind"), ALICE)
    await deliver(process(bus, gateway), cancelled)
    assert bus.steps() == [
        ("o1.release.MUG-001", p.ReleaseStock("MUG-001", ORDER_ID)),
        ("o1.release.TEA-002", p.ReleaseStock("TEA-002", ORDER_ID)),
    ]
    assert gateway.calls == [("void", "charge:o1")]
    assert (bus.state("MUG-001").reserved, bus.state("TEA-002").reserved) == (0, 0)


async def test_a_cancel_after_payment_returns_the_units_and_refunds_the_charge() -> None:
    bus, gateway = InMemoryBus(MUG, TEA), FakeGateway()
    fulfilment = process(bus, gateway)
    await deliver(fulfilment, bus.place_order(ORDER_ID, TWO_MUGS_ONE_TEA, APPROVED))
    (cancelled,) = bus.send(o.CancelOrder(ORDER_ID, "changed my mind"), ALICE)
    start = len(bus.sent)
    await deliver(fulfilment, cancelled)
    assert sent_since(bus, start) == [
        ("o1.return.MUG-001", p.ReturnStock("MUG-001", ORDER_ID, 2)),
        ("o1.return.TEA-002", p.ReturnStock("TEA-002", ORDER_ID, 1)),
        ("o1.refunded", o.MarkOrderRefunded(ORDER_ID, "re_ch_1")),
    ]
    assert gateway.calls[-1] == ("refund", "refund:o1", "ch_1", TOTAL)
    assert (bus.state("MUG-001").on_hand, bus.state("MUG-001").sold) == (10, 0)


async def test_a_charge_with_no_answer_while_the_order_was_cancelled_is_voided() -> None:
    """RejectOrder is refused (cancelled meanwhile), so no OrderRejected will ask for the void:
    the process voids it itself, under the cancel's refund key (one refund between them)."""
    bus = InMemoryBus(MUG, TEA)
    placed = bus.place_order(ORDER_ID, TWO_MUGS_ONE_TEA, SILENT)
    gateway = FakeGateway(while_charging=lambda: bus.send(o.CancelOrder(ORDER_ID, "no"), ALICE))
    await deliver(process(bus, gateway), placed)
    assert [command_id for command_id, _ in bus.steps()[3:]] == [
        "o1.release.MUG-001",
        "o1.release.TEA-002",
        "o1.reject",  # refused: the order is cancelled
        "o1.refunded",
    ]
    assert bus.outcomes["o1.reject"].error is not None
    assert (gateway.calls[-1], gateway.void_keys) == (("void", "charge:o1"), ["refund:o1"])


# --- a failover lost a write ------------------------------------------------------------------


def lose_the_holds(bus: InMemoryBus, *products: Product) -> None:
    """The products' partitions fail over to replicas that never got the order's holds."""
    for product in products:
        bus.states[product.sku] = product


async def test_a_paid_order_whose_hold_was_lost_is_sold_from_what_is_available() -> None:
    bus, gateway = InMemoryBus(MUG, TEA), FakeGateway()
    *_, stock_reserved = reserved_order(bus, TWO_MUGS_ONE_TEA, APPROVED)
    lose_the_holds(bus, MUG)
    await deliver(process(bus, gateway), stock_reserved)
    assert bus.state(ORDER_ID).status == "confirmed"
    mug = bus.state("MUG-001")
    assert (mug.on_hand, mug.reserved, mug.sold) == (8, 0, 2)
    tea = bus.state("TEA-002")
    assert (tea.on_hand, tea.reserved, tea.sold) == (4, 0, 1)


async def test_a_paid_order_whose_lost_hold_cannot_be_sold_is_cancelled_and_refunded() -> None:
    """The units are gone meanwhile: the process cancels the paid order; its cancel gives
    back what was sold (the tea) and refunds; the mug, never sold, is not given back."""
    order_id = "o" + "0" * 28  # the process cancels it through CancelOrder, whose ids are checked
    bus, gateway = InMemoryBus(MUG, TEA), FakeGateway()
    fulfilment = process(bus, gateway)
    bus.place_order(order_id, TWO_MUGS_ONE_TEA, APPROVED)
    for sku, quantity in TWO_MUGS_ONE_TEA.items():
        bus.send(p.ReserveStock(sku, order_id, quantity))
    (stock_reserved,) = bus.send(o.MarkOrderReserved(order_id))
    lose_the_holds(bus, msgspec.structs.replace(MUG, on_hand=1))
    await deliver(fulfilment, stock_reserved)
    assert [command_id.removeprefix(order_id) for command_id, _ in bus.steps()] == [
        ".paid",
        ".commit.MUG-001",  # refused: no hold, 1 left
        ".commit.TEA-002",
        ".return.MUG-001",  # recorded as a release of nothing
        ".stock_lost",
    ]
    (cancelled,) = [e for e in bus.events if isinstance(e, o.OrderCancelled)]
    assert (cancelled.paid, cancelled.by) == (True, "system")
    await deliver(fulfilment, cancelled)
    mug, tea = bus.state("MUG-001"), bus.state("TEA-002")
    assert (mug.on_hand, mug.reserved, mug.sold) == (1, 0, 0)
    assert (tea.on_hand, tea.reserved, tea.sold) == (5, 0, 0)
    assert gateway.calls[-1] == ("refund", f"refund:{order_id}", "ch_1", TOTAL)
    assert bus.state(order_id).status == "cancelled"


@pytest.mark.parametrize("status", ["placed", "reserved", "paid"])
async def test_the_sweeper_drives_an_order_on_from_its_state(status: str) -> None:
    """An order whose next event never came: `drive` takes it on from where it stands, with
    the same step ids, so what had landed is not done again."""
    bus, gateway = InMemoryBus(MUG, TEA), FakeGateway()
    if status == "placed":
        bus.place_order(ORDER_ID, TWO_MUGS_ONE_TEA, APPROVED)
    else:
        reserved_order(bus, TWO_MUGS_ONE_TEA, APPROVED)
    if status == "paid":
        bus.send(o.MarkOrderPaid(ORDER_ID, "ch_9"))
    events = len(bus.events)
    await process(bus, gateway).drive(bus.state(ORDER_ID))
    assert bus.state(ORDER_ID).status == "confirmed"
    confirmed = [e for e in bus.events[events:] if isinstance(e, o.OrderConfirmed)]
    assert len(confirmed) == 1
    mug = bus.state("MUG-001")
    assert (mug.on_hand, mug.reserved, mug.sold) == (8, 0, 2)


# --- delivered again, after a crash, out of its own hands ------------------------------------


async def test_an_order_placed_delivered_again_repeats_its_command_ids_and_changes_nothing() -> (
    None
):
    """After a crash before the ack: same ids, so each step returns its recorded outcome."""
    bus, gateway = InMemoryBus(MUG, TEA), FakeGateway()
    placed = bus.place_order(ORDER_ID, TWO_MUGS_ONE_TEA, APPROVED)
    await deliver(process(bus, gateway), placed)
    events, states, start = list(bus.events), dict(bus.states), len(bus.sent)
    await deliver(process(bus, gateway), placed)  # a new process: it remembers nothing
    assert [command_id for command_id, _ in sent_since(bus, start)] == [
        "o1.reserve.MUG-001",
        "o1.reserve.TEA-002",
        "o1.reserved",
    ]  # then the order is found past being charged: nothing more to do
    assert (bus.events, bus.states) == (events, states)
    assert [call[0] for call in gateway.calls] == ["charge"]


async def test_the_events_of_steps_it_took_itself_are_skipped() -> None:
    bus = InMemoryBus(MUG, TEA)
    fulfilment = process(bus, FakeGateway())
    await deliver(fulfilment, bus.place_order(ORDER_ID, TWO_MUGS_ONE_TEA, APPROVED))
    own = [e for e in bus.events if isinstance(e, o.OrderStockReserved | o.OrderPaid)]
    start = len(bus.sent)
    await deliver(fulfilment, *own)
    assert len(own) == 2 and sent_since(bus, start) == []


async def test_after_a_restart_an_order_found_reserved_is_charged_and_confirmed() -> None:
    """Nothing remembered: OrderStockReserved drives the charge, reading the order afresh."""
    bus, gateway = InMemoryBus(MUG, TEA), FakeGateway()
    *_, stock_reserved = reserved_order(bus, TWO_MUGS_ONE_TEA, APPROVED)
    await deliver(process(bus, gateway), stock_reserved)
    assert [command_id for command_id, _ in bus.steps()] == [
        "o1.paid",
        "o1.commit.MUG-001",
        "o1.commit.TEA-002",
        "o1.confirm",
    ]
    assert gateway.calls == [("charge", "charge:o1", APPROVED, TOTAL)]
    assert bus.state(ORDER_ID).status == "confirmed"


async def test_after_a_restart_a_paid_order_is_sold_and_confirmed() -> None:
    bus = InMemoryBus(MUG, TEA)
    reserved_order(bus, TWO_MUGS_ONE_TEA, APPROVED)
    (paid,) = bus.send(o.MarkOrderPaid(ORDER_ID, "ch_9"))
    await deliver(process(bus, FakeGateway()), paid)
    assert bus.steps() == [
        ("o1.commit.MUG-001", p.CommitStock("MUG-001", ORDER_ID, 2)),
        ("o1.commit.TEA-002", p.CommitStock("TEA-002", ORDER_ID, 1)),
        ("o1.confirm", o.ConfirmOrder(ORDER_ID)),
    ]


async def test_events_it_does_not_follow_are_acknowledged_without_being_read() -> None:
    bus, gateway = InMemoryBus(MUG, TEA), FakeGateway()
    bus.place_order(ORDER_ID, TWO_MUGS_ONE_TEA, APPROVED)
    unread = Entry("9-0", 0, {"t": "OrderShipped", "a": "order:o1", "v": "9", "e": "{not json"})
    others = [
        p.StockReserved("MUG-001", ORDER_ID, 2, p.Stock(10, 2, 0)),
        o.OrderConfirmed(ORDER_ID, "alice", [], TOTAL),
        o.OrderRefunded(ORDER_ID, "alice", "re_1", TOTAL),
    ]
    fulfilment = process(bus, gateway)
    await fulfilment.handle(0, [unread])  # never decoded: its garbage raises nothing
    await deliver(fulfilment, *others)
    assert (bus.sent, gateway.calls) == ([], [])


def test_events_of_one_order_share_a_key_and_events_it_does_not_follow_have_none() -> None:
    """The consumer runs different keys side by side and one key's entries in order."""
    fulfilment = process(InMemoryBus(), FakeGateway())
    placed = entry(o.OrderPlaced(ORDER_ID, "alice", [], 0, "4242"))
    paid = entry(o.OrderPaid(ORDER_ID, "alice", "ch_1", 0))
    shipped = entry(o.OrderShipped(ORDER_ID, "alice"))
    stock = entry(p.StockReserved("MUG-001", ORDER_ID, 2, p.Stock(10, 2, 0)))
    assert [fulfilment.key_of(e) for e in (placed, paid, shipped, stock)] == [
        ORDER_ID,
        ORDER_ID,
        None,
        None,
    ]
