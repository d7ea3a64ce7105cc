"""In-app notifications, from the integration events: each customer's inbox and unread count."""

from __future__ import annotations

from app.domain.order_integration import (
    OrderCancelledV1,
    OrderConfirmedV1,
    OrderRejectedV1,
    OrderShippedV1,
    PublicLine,
)
from app.projections import keys
from app.projections.notifications import KEEP, Notification, NotificationsProjection
from tests.support.projection_harness import AT, PARTITION, json_text, project_events

ORDER_ID = "o0123456789abcdef0123456789ab"
SHORT = "…456789ab"
"""How a notification names the order: the end of its id."""


def confirmed(customer: str = "alice", order_id: str = ORDER_ID) -> OrderConfirmedV1:
    return OrderConfirmedV1(
        event_id=f"{order_id}:confirmed",
        order_id=order_id,
        customer=customer,
        occurred_at=AT,
        total_cents=123456,
        lines=[PublicLine("MUG-001", 2)],
    )


def cancelled(order_id: str, *, refunded: bool, reason: str = "cancelled") -> OrderCancelledV1:
    return OrderCancelledV1(
        event_id=f"{order_id}:cancelled",
        order_id=order_id,
        customer="alice",
        occurred_at=AT,
        reason=reason,
        refunded=refunded,
    )


def rejected(reason: str, detail: str) -> OrderRejectedV1:
    return OrderRejectedV1(
        event_id=f"{ORDER_ID}:rejected",
        order_id=ORDER_ID,
        customer="alice",
        occurred_at=AT,
        reason=reason,
        detail=detail,
    )


def note(order_id: str, kind: str, text: str) -> str:
    """A notification as the inbox list holds it."""
    return json_text(Notification(f"{order_id}:{kind}", order_id, text, AT))


def test_a_confirmed_order_lands_in_its_customers_inbox_with_its_total() -> None:
    run = project_events(NotificationsProjection(retention_seconds=0), [confirmed()])
    text = f"Order {SHORT} is confirmed ($1,234.56)."
    assert run.writes == [
        ("lpush", keys.notifications(PARTITION, "alice"), note(ORDER_ID, "confirmed", text)),
        ("ltrim", keys.notifications(PARTITION, "alice"), 0, KEEP - 1),
        ("incrby", keys.unread(PARTITION, "alice"), 1),
    ]
    assert run.changes == [("notifications", "alice")]


def test_a_cancelled_order_says_whether_the_payment_was_refunded() -> None:
    paid, unpaid = "o" + "a" * 28, "o" + "b" * 28
    run = project_events(
        NotificationsProjection(retention_seconds=0),
        [cancelled(paid, refunded=True), cancelled(unpaid, refunded=False)],
    )
    (push, *_) = run.writes
    assert push[2:] == (
        note(paid, "cancelled", "Order …aaaaaaaa was cancelled. Your payment was refunded."),
        note(unpaid, "cancelled", "Order …bbbbbbbb was cancelled."),
    )


def test_a_cancelled_order_gives_the_reason_when_one_was_given() -> None:
    event = cancelled(ORDER_ID, refunded=False, reason="Changed my mind")
    run = project_events(NotificationsProjection(retention_seconds=0), [event])
    text = f"Order {SHORT} was cancelled: changed my mind."
    pushed = note(ORDER_ID, "cancelled", text)
    assert run.writes[0] == ("lpush", keys.notifications(PARTITION, "alice"), pushed)


def test_a_declined_card_is_announced_once_and_says_the_cart_is_kept() -> None:
    event = rejected("payment_declined", "The card was declined")
    run = project_events(NotificationsProjection(retention_seconds=0), [event])
    text = f"Order {SHORT} was declined: the card was declined. Your cart is kept."
    assert run.writes == [
        ("lpush", keys.notifications(PARTITION, "alice"), note(ORDER_ID, "rejected", text)),
        ("ltrim", keys.notifications(PARTITION, "alice"), 0, KEEP - 1),
        ("incrby", keys.unread(PARTITION, "alice"), 1),
    ]
    assert run.changes == [("notifications", "alice")]


def test_a_rejected_order_gives_its_reason() -> None:
    stock = rejected("insufficient_stock", "Only 1 of MUG-001 left, 2 asked")
    run = project_events(NotificationsProjection(retention_seconds=0), [stock])
    text = f"Order {SHORT} was rejected: only 1 of MUG-001 left, 2 asked. Your cart is kept."
    assert run.writes[0] == (
        "lpush",
        keys.notifications(PARTITION, "alice"),
        note(ORDER_ID, "rejected", text),
    )


def test_a_rejection_without_detail_reads_its_reasons_text() -> None:
    run = project_events(
        NotificationsProjection(retention_seconds=0), [rejected("product_discontinued", "")]
    )
    text = f"Order {SHORT} was rejected: a product was discontinued. Your cart is kept."
    assert run.writes[0] == (
        "lpush",
        keys.notifications(PARTITION, "alice"),
        note(ORDER_ID, "rejected", text),
    )


def test_a_shipped_order_is_announced() -> None:
    shipped = OrderShippedV1(
        event_id=f"{ORDER_ID}:shipped", order_id=ORDER_ID, customer="alice", occurred_at=AT
    )
    run = project_events(NotificationsProjection(retention_seconds=0), [shipped])
    text = f"Order {SHORT} has shipped."
    assert run.writes[0] == (
        "lpush",
        keys.notifications(PARTITION, "alice"),
        note(ORDER_ID, "shipped", text),
    )


def test_each_customer_gets_only_their_own_notifications() -> None:
    run = project_events(
        NotificationsProjection(retention_seconds=0), [confirmed("alice"), confirmed("bob")]
    )
    assert {write[1] for write in run.writes} == {
        keys.notifications(PARTITION, "alice"),
        keys.unread(PARTITION, "alice"),
        keys.notifications(PARTITION, "bob"),
        keys.unread(PARTITION, "bob"),
    }
    assert run.changes == [("notifications", "alice"), ("notifications", "bob")]


def test_a_burst_for_one_customer_is_one_push_one_trim_and_one_count() -> None:
    orders = [f"o{n}" + "0" * 27 for n in range(3)]
    run = project_events(
        NotificationsProjection(retention_seconds=0), [confirmed(order_id=o) for o in orders]
    )
    assert [(write[0], write[1]) for write in run.writes] == [
        ("lpush", keys.notifications(PARTITION, "alice")),
        ("ltrim", keys.notifications(PARTITION, "alice")),
        ("incrby", keys.unread(PARTITION, "alice")),
    ]
    assert len(run.writes[0]) == 2 + 3  # the command, the key, then the three notifications
    assert run.writes[2] == ("incrby", keys.unread(PARTITION, "alice"), 3)
    assert run.changes == [("notifications", "alice")]
