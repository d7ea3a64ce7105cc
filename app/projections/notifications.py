"""In-app notifications, from the integration events (the notifier worker runs this)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import assert_never

import msgspec

from app.domain.events import integration_decoder
from app.domain.orders import (
    IntegrationEvents,
    OrderCancelledV1,
    OrderConfirmedV1,
    OrderShippedV1,
)
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
            return f"Order …{short} is confirmed (${event.total_cents / 100:,.2f})."
        case OrderCancelledV1():
            refunded = " Your payment was refunded." if event.refunded else ""
            return f"Order …{short} was cancelled.{refunded}"
        case OrderShippedV1():
            return f"Order …{short} has shipped."
        case _:
            assert_never(event)


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
