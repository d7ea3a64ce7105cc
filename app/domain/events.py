"""Every domain event, as one tagged union with one decoder."""

from __future__ import annotations

from typing import Any, Union

import msgspec

from app.domain.orders import ORDER_EVENTS, IntegrationEvents
from app.domain.products import PRODUCT_EVENTS

ALL_EVENTS = (*PRODUCT_EVENTS, *ORDER_EVENTS)
DomainEvent: Any = Union[ALL_EVENTS]  # noqa: UP007 - a runtime union of classes


def event_decoder() -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(DomainEvent)


def integration_decoder() -> msgspec.json.Decoder[IntegrationEvents]:
    return msgspec.json.Decoder(IntegrationEvents)
