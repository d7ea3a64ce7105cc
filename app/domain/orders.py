"""The Order aggregate and its lifecycle: placed → reserved → paid → confirmed → shipped.

Over 300 lines, one job: the state, its commands, its events and the decisions between them
read best beside each other (the request and the public events live next door)."""

from __future__ import annotations

from typing import Literal

import msgspec

from app.domain.order_integration import (
    OrderCancelledV1,
    OrderConfirmedV1,
    OrderRejectedV1,
    OrderShippedV1,
    PublicLine,
)
from app.domain.order_request import LineRequest as LineRequest
from app.domain.order_request import Lines
from app.domain.order_request import PlaceOrderRequest as PlaceOrderRequest
from app.domain.products import Product
from app.domain.rules import (
    ADMIN,
    SYSTEM_ROLE,
    CommandStruct,
    EventStruct,
    OrderId,
    Reason,
)
from app.kernel.errors import CommandRejected, Forbidden, problem
from app.kernel.messages import Actor, Problem
from app.kernel.registry import Context, Decision

OrderStatus = Literal["placed", "reserved", "paid", "confirmed", "shipped", "cancelled", "rejected"]
LIFECYCLE: tuple[OrderStatus, ...] = ("placed", "reserved", "paid", "confirmed", "shipped")
"""The way forward; cancelled and rejected leave it."""
CANCELLABLE = frozenset({"placed", "reserved", "paid", "confirmed"})
IN_FLIGHT = frozenset({"placed", "reserved", "paid"})
NO_REASON_GIVEN = "cancelled"
"""A cancellation's reason when its sender gave none."""
REJECT_REASONS = {
    "insufficient_stock": "Not enough stock",
    "product_discontinued": "A product was discontinued",
    "unknown_product": "A product does not exist",
    "payment_declined": "The card was declined",
    "payment_unavailable": "The payment service did not answer",
}
FAILURE_REASONS = frozenset({"payment_unavailable"})
"""Reasons that are something going wrong (the gateway never answered), not a rule saying
no: operators count them as failures (app/kernel/outcomes.py)."""


class OrderLine(msgspec.Struct, frozen=True):
    sku: str
    quantity: int
    unit_price_cents: int


class Order(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    customer: str
    lines: list[OrderLine]
    total_cents: int
    status: OrderStatus
    card_last4: str
    card_token: str
    placed_at: float
    payment_ref: str = ""
    reason: str = ""


# --- commands ------------------------------------------------------------------------------


class PlaceOrder(CommandStruct, frozen=True):
    """PlaceOrder as stored and queued: the card is a gateway token and its last four digits."""

    lines: Lines
    card_last4: str
    card_token: str


class OrderCommand(CommandStruct, frozen=True):
    """Base of the commands of one existing order, whose order_id is the aggregate's id."""

    order_id: str


class CancelOrder(OrderCommand, frozen=True):
    order_id: OrderId
    reason: Reason = ""


class ShipOrder(OrderCommand, frozen=True):
    order_id: OrderId


class MarkOrderReserved(OrderCommand, frozen=True):
    """Internal (fulfilment): every line holds its stock."""

    order_id: str


class MarkOrderPaid(OrderCommand, frozen=True):
    order_id: str
    payment_ref: str


class ConfirmOrder(OrderCommand, frozen=True):
    order_id: str


class RejectOrder(OrderCommand, frozen=True):
    order_id: str
    reason: str
    detail: str = ""


class MarkOrderRefunded(OrderCommand, frozen=True):
    order_id: str
    refund_ref: str


# --- events --------------------------------------------------------------------------------


class OrderPlaced(EventStruct, frozen=True):
    order_id: str
    customer: str
    lines: list[OrderLine]
    total_cents: int
    card_last4: str


class OrderStockReserved(EventStruct, frozen=True):
    order_id: str
    customer: str


class OrderPaid(EventStruct, frozen=True):
    order_id: str
    customer: str
    payment_ref: str
    total_cents: int


class OrderConfirmed(EventStruct, frozen=True):
    order_id: str
    customer: str
    lines: list[OrderLine]
    total_cents: int


class OrderRejected(EventStruct, frozen=True):
    order_id: str
    customer: str
    previous_status: str
    reason: str
    detail: str


class OrderCancelled(EventStruct, frozen=True):
    order_id: str
    customer: str
    previous_status: str
    lines: list[OrderLine]
    total_cents: int
    paid: bool
    reason: str
    by: str


class OrderShipped(EventStruct, frozen=True):
    order_id: str
    customer: str


class OrderRefunded(EventStruct, frozen=True):
    order_id: str
    customer: str
    refund_ref: str
    total_cents: int


OrderEvent = (
    OrderPlaced
    | OrderStockReserved
    | OrderPaid
    | OrderConfirmed
    | OrderRejected
    | OrderCancelled
    | OrderShipped
    | OrderRefunded
)
"""Every order event: the one list of them (consumers derive theirs: kernel/unions.py)."""


# --- rules ---------------------------------------------------------------------------------


def unknown(order_id: str) -> CommandRejected:
    """Not yet, for a process's step: its order may be placed again (a failover lost it)."""
    return CommandRejected("unknown_order", f"There is no order {order_id}", not_yet=True)


def existing(state: Order | None, order_id: str) -> Order:
    if state is None:
        raise unknown(order_id)
    return state


def owner_or_admin(cmd: CancelOrder, state: Order | None, actor: Actor) -> None:
    """The customer, an admin, or the fulfilment process itself (an order it cannot sell)."""
    if state is None or state.customer == actor.username:
        return
    if not (actor.has_role(ADMIN) or actor.has_role(SYSTEM_ROLE)):
        raise Forbidden("Only the customer who placed an order, or an admin, may cancel it")


def rejection(reason: str, detail: str = "") -> Problem:
    return problem(
        reason, 409, detail or REJECT_REASONS.get(reason, reason), title=REJECT_REASONS.get(reason)
    )


def place(cmd: PlaceOrder, state: Order | None, ctx: Context) -> Decision[Order]:
    if state is not None:  # the id is new; this is a replay of an order already placed
        return Decision(complete=False)
    lines = []
    for line in cmd.lines:
        product = ctx.lookups.get(line.sku)
        if not isinstance(product, Product):
            raise CommandRejected("unknown_product", f"There is no product {line.sku}")
        if product.status == "discontinued":
            raise CommandRejected("product_discontinued", f"{line.sku} is discontinued")
        lines.append(OrderLine(line.sku, line.quantity, product.price_cents))
    assert ctx.actor.username is not None
    order = Order(
        order_id=ctx.aggregate_id,
        customer=ctx.actor.username,
        lines=lines,
        total_cents=sum(line.quantity * line.unit_price_cents for line in lines),
        status="placed",
        card_last4=cmd.card_last4,
        card_token=cmd.card_token,
        placed_at=ctx.now,
    )
    event = OrderPlaced(order.order_id, order.customer, lines, order.total_cents, cmd.card_last4)
    return Decision(order, [event], complete=False)


def _move(order: Order, status: OrderStatus, **changes: str) -> Order:
    return msgspec.structs.replace(order, status=status, **changes)


def _transition_error(order: Order, wanted: str) -> CommandRejected:
    """The order is not `wanted`: not yet (still earlier on its way: a step of the process
    ahead of what a failover left of the order), or past it."""
    not_yet = (
        wanted in LIFECYCLE
        and order.status in LIFECYCLE
        and LIFECYCLE.index(order.status) < LIFECYCLE.index(wanted)
    )
    return CommandRejected(
        "order_not_" + wanted, f"Order {order.order_id} is {order.status}", not_yet=not_yet
    )


def mark_reserved(cmd: MarkOrderReserved, state: Order | None, ctx: Context) -> Decision[Order]:
    order = existing(state, cmd.order_id)
    if order.status != "placed":
        raise _transition_error(order, "placed")
    return Decision(_move(order, "reserved"), [OrderStockReserved(order.order_id, order.customer)])


def mark_paid(cmd: MarkOrderPaid, state: Order | None, ctx: Context) -> Decision[Order]:
    order = existing(state, cmd.order_id)
    if order.status != "reserved":
        raise _transition_error(order, "reserved")
    return Decision(
        _move(order, "paid", payment_ref=cmd.payment_ref),
        [OrderPaid(order.order_id, order.customer, cmd.payment_ref, order.total_cents)],
    )


def confirm(cmd: ConfirmOrder, state: Order | None, ctx: Context) -> Decision[Order]:
    order = existing(state, cmd.order_id)
    if order.status != "paid":
        raise _transition_error(order, "paid")
    public = OrderConfirmedV1(
        event_id=f"{order.order_id}:confirmed",
        order_id=order.order_id,
        customer=order.customer,
        occurred_at=ctx.now,
        total_cents=order.total_cents,
        lines=[PublicLine(line.sku, line.quantity) for line in order.lines],
    )
    return Decision(
        _move(order, "confirmed"),
        [OrderConfirmed(order.order_id, order.customer, order.lines, order.total_cents)],
        integration=[public],
    )


def reject(cmd: RejectOrder, state: Order | None, ctx: Context) -> Decision[Order]:
    order = existing(state, cmd.order_id)
    if order.status not in ("placed", "reserved"):
        raise _transition_error(order, "rejectable")
    public = OrderRejectedV1(
        event_id=f"{order.order_id}:rejected",
        order_id=order.order_id,
        customer=order.customer,
        occurred_at=ctx.now,
        reason=cmd.reason,
        detail=cmd.detail[:200],
    )
    return Decision(
        _move(order, "rejected", reason=cmd.reason),
        [OrderRejected(order.order_id, order.customer, order.status, cmd.reason, cmd.detail)],
        integration=[public],
    )


def cancel(cmd: CancelOrder, state: Order | None, ctx: Context) -> Decision[Order]:
    order = existing(state, cmd.order_id)
    if order.status not in CANCELLABLE:
        raise CommandRejected(
            "order_not_cancellable",
            f"Order {order.order_id} is {order.status}; it cannot be cancelled",
        )
    reason = cmd.reason or NO_REASON_GIVEN
    by = ctx.actor.username or ""
    paid = order.status in ("paid", "confirmed")
    public = OrderCancelledV1(
        event_id=f"{order.order_id}:cancelled",
        order_id=order.order_id,
        customer=order.customer,
        occurred_at=ctx.now,
        reason=reason[:200],
        refunded=paid,
    )
    return Decision(
        _move(order, "cancelled", reason=reason),
        [
            OrderCancelled(
                order.order_id,
                order.customer,
                order.status,
                order.lines,
                order.total_cents,
                paid,
                reason,
                by,
            )
        ],
        integration=[public],
    )


def ship(cmd: ShipOrder, state: Order | None, ctx: Context) -> Decision[Order]:
    order = existing(state, cmd.order_id)
    if order.status != "confirmed":
        raise CommandRejected(
            "order_not_shippable", f"Order {order.order_id} is {order.status}; only confirmed ships"
        )
    public = OrderShippedV1(
        event_id=f"{order.order_id}:shipped",
        order_id=order.order_id,
        customer=order.customer,
        occurred_at=ctx.now,
    )
    return Decision(
        _move(order, "shipped"),
        [OrderShipped(order.order_id, order.customer)],
        integration=[public],
    )


def mark_refunded(cmd: MarkOrderRefunded, state: Order | None, ctx: Context) -> Decision[Order]:
    order = existing(state, cmd.order_id)
    return Decision(
        msgspec.structs.replace(order, payment_ref=order.payment_ref + " refunded"),
        [OrderRefunded(order.order_id, order.customer, cmd.refund_ref, order.total_cents)],
    )
