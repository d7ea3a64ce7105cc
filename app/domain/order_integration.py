"""The orders' integration events: a public, versioned schema for other systems (no card, no
email), published beside the events of the order that made them (see orders.py)."""

from __future__ import annotations

import msgspec


class PublicLine(msgspec.Struct, frozen=True):
    sku: str
    quantity: int


class IntegrationEvent(msgspec.Struct, tag_field="type", frozen=True, kw_only=True):
    schema_version: int = 1
    event_id: str
    order_id: str
    customer: str
    occurred_at: float


class OrderConfirmedV1(IntegrationEvent, frozen=True, tag="OrderConfirmed"):
    total_cents: int
    lines: list[PublicLine]


class OrderCancelledV1(IntegrationEvent, frozen=True, tag="OrderCancelled"):
    reason: str
    refunded: bool


class OrderShippedV1(IntegrationEvent, frozen=True, tag="OrderShipped"):
    pass


class OrderRejectedV1(IntegrationEvent, frozen=True, tag="OrderRejected"):
    """The order could not be fulfilled (e.g. `payment_declined`, `insufficient_stock`)."""

    reason: str
    detail: str = ""


IntegrationEvents = OrderConfirmedV1 | OrderRejectedV1 | OrderCancelledV1 | OrderShippedV1
