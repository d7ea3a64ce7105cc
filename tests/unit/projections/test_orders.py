"""Customer orders: one hash per order (status, total, lines), indexed per customer and overall."""

from __future__ import annotations

import pytest

from app.domain import orders as o
from app.domain.orders import OrderLine
from app.projections import keys
from app.projections.orders import OrdersProjection
from tests.support.projection_harness import AT, PARTITION, Stamped, json_text, project_events

ORDER_ID = "o1"
ORDER = keys.order(PARTITION, ORDER_ID)
LINES = [OrderLine("MUG-001", 2, 1200), OrderLine("TEA-002", 3, 350)]
CHANGE = ("orders", f"alice/{ORDER_ID}")
"""Keys of per-user views start with their owner: alice's topic gets it, nobody else's."""
ORDERS = OrdersProjection()


def test_a_placed_order_gets_its_row_and_joins_its_customers_list_and_the_admins() -> None:
    run = project_events(ORDERS, [o.OrderPlaced(ORDER_ID, "alice", LINES, 3450, "4242")])
    assert run.writes == [
        (
            "hset",
            ORDER,
            {
                "order_id": ORDER_ID,
                "customer": "alice",
                "status": "placed",
                "lines": json_text(LINES),
                "total_cents": "3450",
                "card_last4": "4242",
                "placed_at": str(AT),
                "updated_at": str(AT),
                "reason": "",
            },
        ),
        ("zadd", keys.orders_of(PARTITION, "alice"), {ORDER_ID: AT}),  # newest last, by when placed
        ("zadd", keys.all_orders(PARTITION), {ORDER_ID: AT}),
    ]
    assert run.changes == [CHANGE]


@pytest.mark.parametrize(
    ("event", "status"),
    [
        (o.OrderStockReserved(ORDER_ID, "alice"), "reserved"),
        (o.OrderPaid(ORDER_ID, "alice", "ch_1", 3450), "paid"),
        (o.OrderConfirmed(ORDER_ID, "alice", LINES, 3450), "confirmed"),
        (o.OrderShipped(ORDER_ID, "alice"), "shipped"),
    ],
    ids=["reserved", "paid", "confirmed", "shipped"],
)
def test_each_step_sets_the_status_and_when_it_changed(event: o.OrderEvent, status: str) -> None:
    run = project_events(ORDERS, [Stamped(event, version=2, at=AT + 5)])
    assert run.writes == [("hset", ORDER, {"status": status, "updated_at": str(AT + 5)})]
    assert run.changes == [CHANGE]


def test_a_rejected_order_says_why() -> None:
    event = o.OrderRejected(ORDER_ID, "alice", "placed", "insufficient_stock", "Only 1 left")
    run = project_events(ORDERS, [Stamped(event, version=2)])
    assert run.writes == [
        (
            "hset",
            ORDER,
            {"status": "rejected", "updated_at": str(AT), "reason": "insufficient_stock"},
        )
    ]


def test_a_cancelled_order_keeps_the_reason_it_was_cancelled_for() -> None:
    event = o.OrderCancelled(
        ORDER_ID, "alice", "paid", LINES, 3450, True, "changed my mind", "alice"
    )
    run = project_events(ORDERS, [Stamped(event, version=4)])
    assert run.writes == [
        ("hset", ORDER, {"status": "cancelled", "updated_at": str(AT), "reason": "changed my mind"})
    ]


def test_a_refund_marks_the_order_refunded_and_leaves_its_status() -> None:
    run = project_events(ORDERS, [Stamped(o.OrderRefunded(ORDER_ID, "alice", "re_1", 3450), 5)])
    assert run.writes == [("hset", ORDER, {"refunded": "1", "updated_at": str(AT)})]


def test_an_order_from_placed_to_confirmed_in_one_batch_is_one_write_of_its_row() -> None:
    run = project_events(
        ORDERS,
        [
            o.OrderPlaced(ORDER_ID, "alice", LINES, 3450, "4242"),
            o.OrderStockReserved(ORDER_ID, "alice"),
            o.OrderPaid(ORDER_ID, "alice", "ch_1", 3450),
            o.OrderConfirmed(ORDER_ID, "alice", LINES, 3450),
        ],
    )
    (row, *indexes) = run.writes
    assert row[:2] == ("hset", ORDER) and row[2]["status"] == "confirmed"
    assert [write[1] for write in indexes] == [
        keys.orders_of(PARTITION, "alice"),
        keys.all_orders(PARTITION),
    ]
    assert run.changes == [CHANGE]
    assert run.versions == {f"order:{ORDER_ID}": 4}


def test_a_step_delivered_again_is_skipped_and_one_that_skips_ahead_is_a_gap() -> None:
    again = project_events(
        ORDERS, [Stamped(o.OrderPaid(ORDER_ID, "alice", "ch_1", 3450), 3)], {f"order:{ORDER_ID}": 3}
    )
    assert (again.writes, again.changes) == ([], [])
    ahead = project_events(
        ORDERS, [Stamped(o.OrderShipped(ORDER_ID, "alice"), 5)], {f"order:{ORDER_ID}": 3}
    )
    assert ahead.writes == [("hset", ORDER, {"status": "shipped", "updated_at": str(AT)})]
    assert ahead.gaps == [f"order:{ORDER_ID}: after v3 came v5 (1-0)"]
