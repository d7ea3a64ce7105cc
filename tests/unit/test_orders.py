"""The Order aggregate: placing, its lifecycle, progress of PlaceOrder, integration events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from app.domain import order_integration as oi
from app.domain import orders as o
from app.domain.events import event_decoder, integration_decoder
from app.domain.orders import LineRequest, Order, OrderLine, PlaceOrderRequest
from app.domain.products import Product
from app.kernel.command_status import StatusChange
from app.kernel.errors import CommandRejected, Forbidden, problem
from app.kernel.messages import Actor
from app.kernel.registry import Context, Decision
from app.processes.order_progress import place_order_step

ORDER_ID = "o" + "0123456789abcdef0123456789ab"
TOKEN = "tok_5ecret_gateway_token"
NOW = 1_700_000_000.0
ALICE = Actor("alice", frozenset({"customer"}))
BOB = Actor("bob", frozenset({"customer"}))
ADMIN = Actor("admin", frozenset({"admin"}))
SYSTEM = Actor("system", frozenset({"system"}))
MUG = Product(sku="MUG-001", name="Blue mug", price_cents=1200, on_hand=10)
TEA = Product(sku="TEA-002", name="Green tea", price_cents=350, on_hand=50)
STATUSES = ("placed", "reserved", "paid", "confirmed", "shipped", "cancelled", "rejected")


def ctx(actor: Actor = SYSTEM, lookups: dict[str, Any] | None = None) -> Context:
    return Context(
        command_id="c9-2", actor=actor, now=NOW, aggregate_id=ORDER_ID, lookups=lookups or {}
    )


def order(status: str = "placed", **changes: Any) -> Order:
    """Alice's order of 2 mugs and 3 teas, in `status`."""
    base = Order(
        order_id=ORDER_ID,
        customer="alice",
        lines=[OrderLine("MUG-001", 2, 1200), OrderLine("TEA-002", 3, 350)],
        total_cents=3450,
        status="placed",
        card_last4="4242",
        card_token=TOKEN,
        placed_at=NOW - 10,
    )
    return msgspec.structs.replace(base, status=status, **changes)


def place_cmd(*lines: tuple[str, int]) -> o.PlaceOrder:
    requested = [LineRequest(sku, qty) for sku, qty in lines] or [LineRequest("MUG-001", 2)]
    return o.PlaceOrder(requested, "4242", TOKEN)


def steps(decision: Decision[Any]) -> list[StatusChange]:
    """What the decision's events do to the status of the PlaceOrder that made the order."""
    return [c for e in decision.events if (c := place_order_step(e)) is not None]


def rejected(call: Callable[[], Any], code: str) -> CommandRejected:
    with pytest.raises(CommandRejected) as info:
        call()
    assert info.value.code == code
    assert info.value.status == 409
    return info.value


# --- place -----------------------------------------------------------------------------------


def test_place_prices_lines_from_the_products_looked_up() -> None:
    lookups = {"MUG-001": MUG, "TEA-002": TEA}
    decision = o.place(place_cmd(("MUG-001", 2), ("TEA-002", 3)), None, ctx(ALICE, lookups))
    lines = [OrderLine("MUG-001", 2, 1200), OrderLine("TEA-002", 3, 350)]
    assert decision.state == Order(
        order_id=ORDER_ID,
        customer="alice",
        lines=lines,
        total_cents=3450,
        status="placed",
        card_last4="4242",
        card_token=TOKEN,
        placed_at=NOW,
    )
    assert list(decision.events) == [o.OrderPlaced(ORDER_ID, "alice", lines, 3450, "4242")]
    assert decision.complete is False
    assert list(decision.integration) == []
    assert steps(decision) == []


def test_place_of_an_unknown_product_is_refused() -> None:
    call = lambda: o.place(place_cmd(("NOPE-1", 1)), None, ctx(ALICE, {"MUG-001": MUG}))  # noqa: E731
    assert rejected(call, "unknown_product").detail == "There is no product NOPE-1"


def test_place_with_a_lookup_that_is_not_a_product_is_refused() -> None:
    call = lambda: o.place(place_cmd(("MUG-001", 1)), None, ctx(ALICE, {"MUG-001": None}))  # noqa: E731
    rejected(call, "unknown_product")


def test_place_of_a_discontinued_product_is_refused() -> None:
    gone = msgspec.structs.replace(MUG, status="discontinued")
    lookups = {"MUG-001": gone, "TEA-002": TEA}
    call = lambda: o.place(place_cmd(("TEA-002", 1), ("MUG-001", 1)), None, ctx(ALICE, lookups))  # noqa: E731
    assert rejected(call, "product_discontinued").detail == "MUG-001 is discontinued"


def test_place_replayed_on_an_existing_order_changes_nothing() -> None:
    decision = o.place(place_cmd(), order(), ctx(ALICE, {"MUG-001": MUG}))
    assert decision.state is None
    assert list(decision.events) == []
    assert decision.complete is False


def test_place_does_not_check_stock_which_reservation_does() -> None:
    empty = msgspec.structs.replace(MUG, on_hand=0)
    decision = o.place(place_cmd(("MUG-001", 100)), None, ctx(ALICE, {"MUG-001": empty}))
    assert decision.state is not None
    assert decision.state.total_cents == 120_000


# --- the happy path and its progress ---------------------------------------------------------


def test_the_whole_lifecycle_reports_progress_to_the_place_command() -> None:
    reserved = o.mark_reserved(o.MarkOrderReserved(ORDER_ID), order(), ctx())
    assert reserved.state == order("reserved")
    assert list(reserved.events) == [o.OrderStockReserved(ORDER_ID, "alice")]
    assert steps(reserved) == [StatusChange("stock_reserved")]
    assert reserved.complete is True

    paid = o.mark_paid(o.MarkOrderPaid(ORDER_ID, "pay_1"), reserved.state, ctx())
    assert paid.state == order("paid", payment_ref="pay_1")
    assert list(paid.events) == [o.OrderPaid(ORDER_ID, "alice", "pay_1", 3450)]
    assert steps(paid) == [StatusChange("payment_captured")]

    confirmed = o.confirm(o.ConfirmOrder(ORDER_ID), paid.state, ctx())
    assert confirmed.state == order("confirmed", payment_ref="pay_1")
    assert list(confirmed.events) == [
        o.OrderConfirmed(ORDER_ID, "alice", order().lines, 3450),
    ]
    assert steps(confirmed) == [StatusChange(status="succeeded")]
    assert list(confirmed.integration) == [
        oi.OrderConfirmedV1(
            event_id=f"{ORDER_ID}:confirmed",
            order_id=ORDER_ID,
            customer="alice",
            occurred_at=NOW,
            total_cents=3450,
            lines=[oi.PublicLine("MUG-001", 2), oi.PublicLine("TEA-002", 3)],
        )
    ]

    shipped = o.ship(o.ShipOrder(ORDER_ID), confirmed.state, ctx(ADMIN))
    assert shipped.state == order("shipped", payment_ref="pay_1")
    assert list(shipped.events) == [o.OrderShipped(ORDER_ID, "alice")]
    assert steps(shipped) == []
    assert list(shipped.integration) == [
        oi.OrderShippedV1(
            event_id=f"{ORDER_ID}:shipped", order_id=ORDER_ID, customer="alice", occurred_at=NOW
        )
    ]


TRANSITIONS: list[tuple[str, Callable[..., Decision[Order]], Any, str, str]] = [
    ("mark_reserved", o.mark_reserved, o.MarkOrderReserved(ORDER_ID), "placed", "order_not_placed"),
    ("mark_paid", o.mark_paid, o.MarkOrderPaid(ORDER_ID, "p"), "reserved", "order_not_reserved"),
    ("confirm", o.confirm, o.ConfirmOrder(ORDER_ID), "paid", "order_not_paid"),
    ("ship", o.ship, o.ShipOrder(ORDER_ID), "confirmed", "order_not_shippable"),
]


@pytest.mark.parametrize(
    "decide, cmd, source, code, status",
    [
        (decide, cmd, source, code, status)
        for _, decide, cmd, source, code in TRANSITIONS
        for status in STATUSES
        if status != source
    ],
)
def test_a_step_from_the_wrong_status_is_refused(
    decide: Callable[..., Decision[Order]], cmd: Any, source: str, code: str, status: str
) -> None:
    error = rejected(lambda: decide(cmd, order(status), ctx(ADMIN)), code)
    assert status in error.detail


@pytest.mark.parametrize(
    "decide, cmd",
    [(decide, cmd) for _, decide, cmd, _, _ in TRANSITIONS]
    + [
        (o.reject, o.RejectOrder(ORDER_ID, "insufficient_stock")),
        (o.cancel, o.CancelOrder(ORDER_ID)),
        (o.mark_refunded, o.MarkOrderRefunded(ORDER_ID, "r1")),
    ],
)
def test_a_step_on_an_unknown_order_is_refused(
    decide: Callable[..., Decision[Order]], cmd: Any
) -> None:
    error = rejected(lambda: decide(cmd, None, ctx(ADMIN)), "unknown_order")
    assert error.detail == f"There is no order {ORDER_ID}"


# --- reject ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["placed", "reserved"])
def test_reject_fails_the_place_command_with_the_reason(status: str) -> None:
    cmd = o.RejectOrder(ORDER_ID, "insufficient_stock", "Only 1 of MUG-001 left, 2 asked")
    decision = o.reject(cmd, order(status), ctx())
    assert decision.state == order("rejected", reason="insufficient_stock")
    assert list(decision.events) == [
        o.OrderRejected(
            ORDER_ID, "alice", status, "insufficient_stock", "Only 1 of MUG-001 left, 2 asked"
        )
    ]
    expected = problem(
        "insufficient_stock", 409, "Only 1 of MUG-001 left, 2 asked", title="Not enough stock"
    )
    assert steps(decision) == [StatusChange(status="failed", error=expected)]
    assert list(decision.integration) == [
        oi.OrderRejectedV1(
            event_id=f"{ORDER_ID}:rejected",
            order_id=ORDER_ID,
            customer="alice",
            occurred_at=NOW,
            reason="insufficient_stock",
            detail="Only 1 of MUG-001 left, 2 asked",
        )
    ]


def test_reject_without_detail_uses_the_reasons_text() -> None:
    decision = o.reject(o.RejectOrder(ORDER_ID, "payment_declined"), order("reserved"), ctx())
    (progress,) = steps(decision)
    assert progress.status == "failed"
    assert progress.error is not None
    assert (progress.error.code, progress.error.status) == ("payment_declined", 409)
    assert progress.error.title == "The card was declined"
    assert progress.error.detail == "The card was declined"
    assert progress.error.type == "/problems/payment_declined"


@pytest.mark.parametrize("status", ["paid", "confirmed", "shipped", "cancelled", "rejected"])
def test_reject_is_only_for_placed_or_reserved_orders(status: str) -> None:
    cmd = o.RejectOrder(ORDER_ID, "payment_declined")
    rejected(lambda: o.reject(cmd, order(status), ctx()), "order_not_rejectable")


# --- cancel ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["placed", "reserved", "paid"])
def test_cancel_of_an_in_flight_order_fails_the_place_command(status: str) -> None:
    decision = o.cancel(o.CancelOrder(ORDER_ID, "changed my mind"), order(status), ctx(ALICE))
    assert decision.state == order("cancelled", reason="changed my mind")
    paid = status == "paid"
    assert list(decision.events) == [
        o.OrderCancelled(
            ORDER_ID, "alice", status, order().lines, 3450, paid, "changed my mind", "alice"
        )
    ]
    (progress,) = steps(decision)
    assert (progress.step, progress.status) == ("", "failed")
    assert progress.error is not None
    assert (progress.error.code, progress.error.status) == ("order_cancelled", 409)
    assert list(decision.integration) == [
        oi.OrderCancelledV1(
            event_id=f"{ORDER_ID}:cancelled",
            order_id=ORDER_ID,
            customer="alice",
            occurred_at=NOW,
            reason="changed my mind",
            refunded=paid,
        )
    ]


def test_cancel_of_a_confirmed_order_leaves_the_place_command_alone() -> None:
    decision = o.cancel(o.CancelOrder(ORDER_ID), order("confirmed"), ctx(ADMIN))
    assert decision.state == order("cancelled", reason="cancelled")
    assert steps(decision) == []
    (event,) = decision.events
    assert isinstance(event, o.OrderCancelled)
    assert (event.previous_status, event.paid, event.reason, event.by) == (
        "confirmed",
        True,
        "cancelled",
        "admin",
    )
    (public,) = decision.integration
    assert isinstance(public, oi.OrderCancelledV1)
    assert public.refunded is True
    assert public.reason == "cancelled"


@pytest.mark.parametrize("status", ["shipped", "cancelled", "rejected"])
def test_cancel_of_a_finished_order_is_refused(status: str) -> None:
    call = lambda: o.cancel(o.CancelOrder(ORDER_ID), order(status), ctx(ALICE))  # noqa: E731
    error = rejected(call, "order_not_cancellable")
    assert error.detail == f"Order {ORDER_ID} is {status}; it cannot be cancelled"


# --- who may cancel --------------------------------------------------------------------------


@pytest.mark.parametrize("actor", [ALICE, ADMIN], ids=["owner", "admin"])
def test_owner_or_admin_may_cancel(actor: Actor) -> None:
    o.owner_or_admin(o.CancelOrder(ORDER_ID), order(), actor)  # raises nothing


def test_another_customer_may_not_cancel() -> None:
    with pytest.raises(Forbidden) as info:
        o.owner_or_admin(o.CancelOrder(ORDER_ID), order(), BOB)
    assert (info.value.code, info.value.status) == ("forbidden", 403)


def test_ownership_of_an_unknown_order_is_left_to_the_handler() -> None:
    o.owner_or_admin(o.CancelOrder(ORDER_ID), None, BOB)  # raises nothing: unknown_order later


# --- refunds ---------------------------------------------------------------------------------


def test_mark_refunded_records_the_refund() -> None:
    decision = o.mark_refunded(
        o.MarkOrderRefunded(ORDER_ID, "rf_1"), order("cancelled", payment_ref="pay_1"), ctx()
    )
    assert decision.state == order("cancelled", payment_ref="pay_1 refunded")
    assert list(decision.events) == [o.OrderRefunded(ORDER_ID, "alice", "rf_1", 3450)]


# --- what leaves the aggregate ---------------------------------------------------------------


def _all_public_decisions() -> list[Decision[Order]]:
    return [
        o.confirm(o.ConfirmOrder(ORDER_ID), order("paid"), ctx()),
        o.cancel(o.CancelOrder(ORDER_ID, "x"), order("placed"), ctx(ALICE)),
        o.cancel(o.CancelOrder(ORDER_ID), order("confirmed"), ctx(ADMIN)),
        o.ship(o.ShipOrder(ORDER_ID), order("confirmed"), ctx(ADMIN)),
    ]


def test_integration_events_carry_no_card_and_no_email() -> None:
    events = [event for decision in _all_public_decisions() for event in decision.integration]
    assert len(events) == 4
    for event in events:
        raw = msgspec.json.encode(event)
        document = msgspec.json.decode(raw)
        assert TOKEN.encode() not in raw
        assert b"4242" not in raw
        assert b"@" not in raw
        assert not {"card_token", "card_last4", "card_number", "email"} & set(document)
        assert document["schema_version"] == 1
        assert integration_decoder().decode(raw) == event


def test_integration_events_have_a_stable_schema() -> None:
    keys = [
        sorted(msgspec.json.decode(msgspec.json.encode(event)))
        for decision in _all_public_decisions()
        for event in decision.integration
    ]
    base = ["customer", "event_id", "occurred_at", "order_id", "schema_version", "type"]
    assert keys == [
        sorted([*base, "lines", "total_cents"]),
        sorted([*base, "reason", "refunded"]),
        sorted([*base, "reason", "refunded"]),
        base,
    ]


def test_domain_events_never_carry_the_card_token() -> None:
    placed = o.place(place_cmd(), None, ctx(ALICE, {"MUG-001": MUG}))
    decisions = [placed, *_all_public_decisions()]
    decisions.append(o.reject(o.RejectOrder(ORDER_ID, "payment_declined"), order(), ctx()))
    for decision in decisions:
        for event in decision.events:
            raw = msgspec.json.encode(event)
            assert TOKEN.encode() not in raw
            assert event_decoder().decode(raw) == event


# --- PlaceOrderRequest -----------------------------------------------------------------------

CARD = "4242424242424242"


def request(skus: list[str], card: str = CARD) -> PlaceOrderRequest:
    return PlaceOrderRequest([LineRequest(sku, 1) for sku in skus], card)


def test_a_valid_request_has_no_errors() -> None:
    assert request(["MUG-001", "TEA-002"]).validate() == []


def test_repeated_skus_are_reported_at_each_repetition() -> None:
    errors = request(["AAA", "BBB", "AAA", "AAA"]).validate()
    assert [e.path for e in errors] == ["$.lines[2].sku", "$.lines[3].sku"]
    assert {e.message for e in errors} == {"Each sku may appear only once"}


def test_a_card_failing_luhn_is_reported() -> None:
    errors = request(["AAA"], "4242424242424241").validate()
    assert [(e.path, e.message) for e in errors] == [("$.card_number", "Not a valid card number")]


def test_both_rules_are_reported_together() -> None:
    errors = request(["AAA", "AAA"], "4242424242424241").validate()
    assert [e.path for e in errors] == ["$.lines[1].sku", "$.card_number"]


def test_repr_never_shows_the_card_number() -> None:
    req = request(["AAA"])
    for text in (repr(req), str(req), f"{req}", f"{req!r}", repr([req]), repr({"r": req})):
        assert CARD not in text
        assert "****4242" in text
