"""Shared field rules of the public contract (API.md)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from app.kernel.validation import PLAIN_TEXT, PLAIN_TEXT_RULE

ADMIN = "admin"
CUSTOMER = "customer"

Sku = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Z0-9-]{3,32}\Z", description="3 to 32 capital letters, digits or dashes"
    ),
]
ProductName = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=120, pattern=PLAIN_TEXT, description=PLAIN_TEXT_RULE),
]
PriceCents = Annotated[int, msgspec.Meta(ge=1, le=10_000_000)]
InitialStock = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
RestockQuantity = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
MAX_LINE_QUANTITY = 100
LineQuantity = Annotated[int, msgspec.Meta(ge=1, le=MAX_LINE_QUANTITY)]
OrderId = Annotated[str, msgspec.Meta(pattern=r"^o[0-9a-f]{28}\Z", description="an order id")]
Reason = Annotated[
    str, msgspec.Meta(max_length=200, pattern=PLAIN_TEXT, description=PLAIN_TEXT_RULE)
]
CardNumber = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{13,19}\Z", description="13 to 19 digits")]


def luhn_valid(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = ord(char) - 48
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


class CommandStruct(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, frozen=True):
    """Base of every command: tagged by its class name in the `type` field."""


class EventStruct(msgspec.Struct, tag_field="type", frozen=True):
    """Base of every domain event (past tense), tagged by its class name."""
