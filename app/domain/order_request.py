"""PlaceOrder as a client sends it: its lines and the card number, which never leaves the web
process (the registry's `prepare` turns it into orders.PlaceOrder, with a gateway token)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from app.domain.rules import CardNumber, CommandStruct, LineQuantity, Sku, luhn_valid
from app.kernel.messages import FieldError


class LineRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sku: Sku
    quantity: LineQuantity


Lines = Annotated[list[LineRequest], msgspec.Meta(min_length=1, max_length=20)]


def _distinct_skus(lines: list[LineRequest]) -> list[FieldError]:
    seen: set[str] = set()
    errors = []
    for index, line in enumerate(lines):
        if line.sku in seen:
            errors.append(FieldError(f"$.lines[{index}].sku", "Each sku may appear only once"))
        seen.add(line.sku)
    return errors


class PlaceOrderRequest(CommandStruct, frozen=True, tag="PlaceOrder"):
    """PlaceOrder as a client sends it. The card number never leaves the web process."""

    lines: Lines
    card_number: CardNumber

    def validate(self) -> list[FieldError]:
        errors = _distinct_skus(self.lines)
        if not luhn_valid(self.card_number):
            errors.append(FieldError("$.card_number", "Not a valid card number"))
        return errors

    def __repr__(self) -> str:  # never print the number, even by accident
        return f"PlaceOrderRequest(lines={self.lines!r}, card_number=****{self.card_number[-4:]})"
