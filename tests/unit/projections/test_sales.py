"""The sales dashboard (admin): orders by status, revenue, top sellers, orders per minute.

Every figure is a counter moved by increments, so no event needs to read what is there: an
order moving on takes one from its previous status and gives one to its next.
"""

from __future__ import annotations

import pytest

from app.domain import orders as o
from app.domain.orders import OrderLine
from app.projections import keys
from app.projections.sales import SalesProjection
from tests.support.projection_harness import PARTITION, Stamped, project_events

ORDER_ID = "o1"
LINES = [OrderLine("MUG-001", 2, 1200), OrderLine("TEA-002", 3, 350)]
BY_STATUS = keys.sales_by_status(PARTITION)
TOTALS = keys.sales_totals(PARTITION)
TOP = keys.sales_top(PARTITION)
SALES = SalesProjection()


def test_a_placed_order_counts_as_placed_in_its_minute_and_overall() -> None:
    minute = 1_699_999_980  # a whole minute (of the epoch)
    placed = o.OrderPlaced(ORDER_ID, "alice", LINES, 3450, "4242")
    run = project_events(SALES, [Stamped(placed, 1, at=minute + 59.9)])
    assert run.writes == [
        ("hincrby", BY_STATUS, "placed", 1),
        ("incrby", keys.sales_per_minute(PARTITION, 1699999980), 1),
        ("hincrby", TOTALS, "orders_placed", 1),
        ("expireat", keys.sales_per_minute(PARTITION, 1699999980), 1699999980 + 3600),
    ]
    assert run.changes == [("admin", "sales")]


@pytest.mark.parametrize(
    ("event", "before", "after"),
    [
        (o.OrderStockReserved(ORDER_ID, "alice"), "placed", "reserved"),
        (o.OrderPaid(ORDER_ID, "alice", "ch_1", 3450), "reserved", "paid"),
        (o.OrderShipped(ORDER_ID, "alice"), "confirmed", "shipped"),
    ],
    ids=["reserved", "paid", "shipped"],
)
def test_a_step_moves_the_order_from_its_previous_status_to_its_next(
    event: o.OrderEvent, before: str, after: str
) -> None:
    run = project_events(SALES, [Stamped(event, 2)])
    assert run.writes == [("hincrby", BY_STATUS, before, -1), ("hincrby", BY_STATUS, after, 1)]
    assert run.changes == [("admin", "sales")]


def test_a_confirmed_order_is_revenue_and_its_lines_count_towards_the_top_sellers() -> None:
    run = project_events(SALES, [Stamped(o.OrderConfirmed(ORDER_ID, "alice", LINES, 3450), 4)])
    assert run.writes == [
        ("hincrby", BY_STATUS, "paid", -1),
        ("hincrby", BY_STATUS, "confirmed", 1),
        ("hincrby", TOTALS, "revenue_cents", 3450),
        ("zincrby", TOP, 2.0, "MUG-001"),
        ("zincrby", TOP, 3.0, "TEA-002"),
    ]


@pytest.mark.parametrize("previous", ["placed", "reserved"])
def test_a_rejected_order_leaves_the_status_it_was_rejected_in(previous: str) -> None:
    event = o.OrderRejected(ORDER_ID, "alice", previous, "insufficient_stock", "")
    run = project_events(SALES, [Stamped(event, 2)])
    assert run.writes == [
        ("hincrby", BY_STATUS, previous, -1),
        ("hincrby", BY_STATUS, "rejected", 1),
    ]


@pytest.mark.parametrize("previous", ["placed", "reserved", "paid"])
def test_an_order_cancelled_before_it_was_confirmed_takes_back_no_revenue(previous: str) -> None:
    paid = previous == "paid"
    event = o.OrderCancelled(ORDER_ID, "alice", previous, LINES, 3450, paid, "oops", "alice")
    run = project_events(SALES, [Stamped(event, 3)])
    assert run.writes == [
        ("hincrby", BY_STATUS, previous, -1),
        ("hincrby", BY_STATUS, "cancelled", 1),
    ]


def test_a_confirmed_order_cancelled_takes_back_its_revenue_and_its_units_sold() -> None:
    event = o.OrderCancelled(ORDER_ID, "alice", "confirmed", LINES, 3450, True, "oops", "admin")
    run = project_events(SALES, [Stamped(event, 5)])
    assert run.writes == [
        ("hincrby", BY_STATUS, "confirmed", -1),
        ("hincrby", BY_STATUS, "cancelled", 1),
        ("hincrby", TOTALS, "revenue_cents", -3450),
        ("zincrby", TOP, -2.0, "MUG-001"),
        ("zincrby", TOP, -3.0, "TEA-002"),
    ]


def test_a_refund_is_counted_apart_from_revenue() -> None:
    run = project_events(SALES, [Stamped(o.OrderRefunded(ORDER_ID, "alice", "re_1", 3450), 6)])
    assert run.writes == [("hincrby", TOTALS, "refunded_cents", 3450)]


def test_an_order_placed_and_confirmed_in_one_batch_nets_out_to_one_confirmed() -> None:
    run = project_events(
        SALES,
        [
            o.OrderPlaced(ORDER_ID, "alice", LINES, 3450, "4242"),
            o.OrderStockReserved(ORDER_ID, "alice"),
            o.OrderPaid(ORDER_ID, "alice", "ch_1", 3450),
            o.OrderConfirmed(ORDER_ID, "alice", LINES, 3450),
        ],
    )
    by_status = [w for w in run.writes if w[:2] == ("hincrby", BY_STATUS)]
    assert by_status == [
        ("hincrby", BY_STATUS, "placed", 0),
        ("hincrby", BY_STATUS, "reserved", 0),
        ("hincrby", BY_STATUS, "paid", 0),
        ("hincrby", BY_STATUS, "confirmed", 1),
    ]
    assert run.changes == [("admin", "sales")]


def test_a_counter_moved_twice_by_one_event_delivered_twice_is_moved_once() -> None:
    """Increments are not idempotent: the applied version is what makes a redelivery safe."""
    placed = o.OrderPlaced(ORDER_ID, "alice", LINES, 3450, "4242")
    run = project_events(SALES, [Stamped(placed, 1), Stamped(placed, 1)])
    assert ("hincrby", BY_STATUS, "placed", 1) in run.writes
    assert run.applied == 1


def test_an_event_after_a_missing_one_is_counted_and_the_gap_recorded() -> None:
    run = project_events(
        SALES, [Stamped(o.OrderShipped(ORDER_ID, "alice"), 7)], {f"order:{ORDER_ID}": 5}
    )
    assert run.writes == [
        ("hincrby", BY_STATUS, "confirmed", -1),
        ("hincrby", BY_STATUS, "shipped", 1),
    ]
    assert run.gaps == [f"order:{ORDER_ID}: after v5 came v7 (1-0)"]
