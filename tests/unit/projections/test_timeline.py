"""The order timeline: a list per order, one entry per step, each with its time and detail."""

from __future__ import annotations

import pytest

from app.domain import orders as o
from app.domain.orders import OrderLine
from app.projections import keys
from app.projections.timeline import TimelineEntry, TimelineProjection
from tests.support.projection_harness import AT, PARTITION, Stamped, json_text, project_events

ORDER_ID = "o1"
LINES = [OrderLine("MUG-001", 2, 1200), OrderLine("TEA-002", 3, 350)]
TIMELINE = TimelineProjection()


STEPS: list[tuple[o.OrderEvent, TimelineEntry]] = [
    (
        o.OrderPlaced(ORDER_ID, "alice", LINES, 3450, "4242"),
        TimelineEntry("placed", AT, "2 lines, total $34.50"),
    ),
    (o.OrderStockReserved(ORDER_ID, "alice"), TimelineEntry("reserved", AT, "Stock reserved")),
    (
        o.OrderPaid(ORDER_ID, "alice", "ch_1", 3450),
        TimelineEntry("paid", AT, "Payment captured"),
    ),
    (o.OrderConfirmed(ORDER_ID, "alice", LINES, 3450), TimelineEntry("confirmed", AT, "")),
    (
        o.OrderRejected(ORDER_ID, "alice", "reserved", "payment_declined", "Card declined"),
        TimelineEntry("rejected", AT, "The card was declined"),
    ),
    (
        o.OrderCancelled(ORDER_ID, "alice", "placed", LINES, 3450, False, "oops", "alice"),
        TimelineEntry("cancelled", AT, "Cancelled by alice: oops"),
    ),
    (
        o.OrderCancelled(ORDER_ID, "alice", "paid", LINES, 3450, True, o.NO_REASON_GIVEN, "admin"),
        TimelineEntry("cancelled", AT, "Cancelled by admin"),
    ),
    (
        o.OrderRefunded(ORDER_ID, "alice", "re_1", 3450),
        TimelineEntry("refunded", AT, "Payment refunded"),
    ),
    (o.OrderShipped(ORDER_ID, "alice"), TimelineEntry("shipped", AT, "Shipped")),
]
"""Each order event, and the entry it appends (its step, its time, its detail)."""


@pytest.mark.parametrize(("event", "entry"), STEPS, ids=[type(e).__name__ for e, _ in STEPS])
def test_every_order_event_appends_its_step(event: o.OrderEvent, entry: TimelineEntry) -> None:
    run = project_events(TIMELINE, [event])
    assert run.writes == [("rpush", keys.timeline(PARTITION, ORDER_ID), json_text(entry))]
    assert run.changes == [("orders", f"alice/{ORDER_ID}")]


def test_a_rejection_for_a_reason_it_does_not_know_shows_the_reason_itself() -> None:
    event = o.OrderRejected(ORDER_ID, "alice", "placed", "out_of_cheese", "")
    run = project_events(TIMELINE, [event])
    assert run.writes == [
        (
            "rpush",
            keys.timeline(PARTITION, ORDER_ID),
            json_text(TimelineEntry("rejected", AT, "out_of_cheese")),
        )
    ]


def test_the_steps_of_a_batch_are_appended_in_order_with_their_own_times() -> None:
    run = project_events(
        TIMELINE,
        [
            Stamped(o.OrderPlaced(ORDER_ID, "alice", LINES, 3450, "4242"), 1, AT),
            Stamped(o.OrderStockReserved(ORDER_ID, "alice"), 2, AT + 1),
            Stamped(
                o.OrderRejected(ORDER_ID, "alice", "reserved", "payment_declined", ""), 3, AT + 2
            ),
        ],
    )
    assert run.writes == [
        (
            "rpush",
            keys.timeline(PARTITION, ORDER_ID),
            json_text(TimelineEntry("placed", AT, "2 lines, total $34.50")),
            json_text(TimelineEntry("reserved", AT + 1, "Stock reserved")),
            json_text(TimelineEntry("rejected", AT + 2, "The card was declined")),
        )
    ]


def test_a_step_delivered_twice_is_in_the_timeline_once() -> None:
    """An append is not idempotent by itself: the applied version is what keeps it single."""
    reserved = o.OrderStockReserved(ORDER_ID, "alice")
    run = project_events(TIMELINE, [Stamped(reserved, 2), Stamped(reserved, 2)])
    assert run.writes == [
        (
            "rpush",
            keys.timeline(PARTITION, ORDER_ID),
            json_text(TimelineEntry("reserved", AT, "Stock reserved")),
        )
    ]
    assert run.applied == 1


def test_a_step_after_a_missing_one_is_appended_and_the_gap_recorded() -> None:
    run = project_events(
        TIMELINE, [Stamped(o.OrderShipped(ORDER_ID, "alice"), 6)], {f"order:{ORDER_ID}": 4}
    )
    assert len(run.writes) == 1
    assert run.gaps == [f"order:{ORDER_ID}: after v4 came v6 (1-0)"]
