"""Every domain event, as one tagged union with one decoder."""

from __future__ import annotations

import msgspec

from app.domain.order_integration import IntegrationEvents
from app.domain.orders import OrderEvent
from app.domain.products import ProductEvent

DomainEvent = ProductEvent | OrderEvent


def event_decoder() -> msgspec.json.Decoder[DomainEvent]:
    return msgspec.json.Decoder(DomainEvent)


def integration_decoder() -> msgspec.json.Decoder[IntegrationEvents]:
    return msgspec.json.Decoder(IntegrationEvents)
