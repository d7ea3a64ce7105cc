"""In-app notifications, from the integration events (the notifier worker runs this)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import assert_never

import msgspec

from app.domain.events import integration_decoder
from app.domain.money import dollars
from app.domain.order_integration import (
    IntegrationEvents,
    OrderCancelledV1,
    OrderConfirmedV1,
    OrderRejectedV1,
    OrderShippedV1,
)
from app.domain.orders import NO_REASON_GIVEN, REJECT_REASONS
from app.kernel import keys as kernel_keys
from app.kernel.projection import Version
from app.kernel.read_model_writes import ReadModelWrites
from app.kernel.views import Change, View
from app.projections import keys

INBOX = View("notifications")
"""Its live view: a user's inbox changed (key: the user)."""
KEEP = 50


class Notification(msgspec.Struct, frozen=True):
    """One notification, a JSON entry of the user's list (the inbox query reads it back)."""

    id: str
    order_id: str
    text: str
    at: float


def text_of(event: IntegrationEvents) -> str:
    short = event.order_id[-8:]
    match event:
        case OrderConfirmedV1():
            return f"Order …{short} is confirmed ({dollars(event.total_cents)})."
        case OrderRejectedV1(reason="payment_declined"):
            return f"Order …{short} was declined: the card was declined. Your cart is kept."
        case OrderRejectedV1():
            why = _sentence(event.detail or REJECT_REASONS.get(event.reason, event.reason))
            return f"Order …{short} was rejected: {why}. Your cart is kept."
        case OrderCancelledV1():
            refunded = " Your payment was refunded." if event.refunded else ""
            why = "" if event.reason == NO_REASON_GIVEN else f": {_sentence(event.reason)}"
            return f"Order …{short} was cancelled{why}.{refunded}"
        case OrderShippedV1():
            return f"Order …{short} has shipped."
        case _:
            assert_never(event)


def _sentence(text: str) -> str:
    """Text to go after a colon: no capital, no full stop of its own."""
    text = text.strip().rstrip(".")
    return text if text[1:2].isupper() else text[:1].lower() + text[1:]  # an acronym stays


class NotificationsProjection:
    name = "notifications"

    def __init__(self, retention_seconds: float) -> None:
        self._decoder = integration_decoder()
        self.retention_seconds = retention_seconds
        """The integration stream keeps what the notifier acknowledged this long (for readers
        outside its group), then it is trimmed."""

    def stream(self, partition: int) -> str:
        return kernel_keys.integration(partition)

    def decode(self, fields: dict[str, str]) -> tuple[Version | None, IntegrationEvents | None]:
        return None, self._decoder.decode(fields["e"])

    def apply(self, item: IntegrationEvents, tx: ReadModelWrites) -> Iterable[Change]:
        note = Notification(item.event_id, item.order_id, text_of(item), item.occurred_at)
        tx.lpush(keys.notifications(tx.partition, item.customer), msgspec.json.encode(note))
        tx.ltrim(keys.notifications(tx.partition, item.customer), 0, KEEP - 1)
        tx.incr(keys.unread(tx.partition, item.customer))
        return [Change(INBOX, item.customer)]
