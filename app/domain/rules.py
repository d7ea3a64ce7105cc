"""Shared field rules of the public contract (API.md), with the label (`title`), hint
(`description`, also the validation message of a pattern) and example of each: forms are
built from them (app/web/form_specs.py)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from app.kernel.validation import PLAIN_TEXT, PLAIN_TEXT_RULE

ADMIN = "admin"
CUSTOMER = "customer"
SYSTEM_ROLE = "system"
"""The processes' own actor (kernel.messages.SYSTEM); no user has it."""

Sku = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Z0-9-]{3,32}\Z",
        title="SKU",
        description="3 to 32 capital letters, digits or dashes",
        examples=["MUG-001"],
    ),
]
ProductName = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=120,
        pattern=PLAIN_TEXT,
        title="Name",
        description=PLAIN_TEXT_RULE,
        examples=["Blue mug"],
    ),
]
PriceCents = Annotated[
    int, msgspec.Meta(ge=1, le=10_000_000, title="Price (cents)", examples=[1200])
]
InitialStock = Annotated[
    int, msgspec.Meta(ge=0, le=1_000_000, title="Initial stock", examples=[40])
]
RestockQuantity = Annotated[int, msgspec.Meta(ge=1, le=1_000_000, title="Quantity")]
MAX_LINE_QUANTITY = 100
LineQuantity = Annotated[int, msgspec.Meta(ge=1, le=MAX_LINE_QUANTITY, title="Quantity")]
OrderId = Annotated[
    str, msgspec.Meta(pattern=r"^o[0-9a-f]{28}\Z", title="Order", description="an order id")
]
Reason = Annotated[
    str,
    msgspec.Meta(max_length=200, pattern=PLAIN_TEXT, title="Reason", description=PLAIN_TEXT_RULE),
]
CardNumber = Annotated[
    str,
    msgspec.Meta(pattern=r"^[0-9]{13,19}\Z", title="Card number", description="13 to 19 digits"),
]


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
