"""Money as people read and write it: dollars and cents (the contract keeps whole cents)."""

from __future__ import annotations

import re
from decimal import Decimal

_DOLLARS = re.compile(r"\$?\s*(?P<whole>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]*)(?:\.(?P<cents>[0-9]*))?")


def dollars(cents: int) -> str:
    """14300 → "$143.00" (exact: whole cents, no float)."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{part:02d}"


def cents_of(text: str) -> int:
    """An amount in dollars as typed ("12", "12.5", "$1,200.99") → whole cents, exactly.

    Raises ValueError with a message for the person: not an amount, or past the cent."""
    found = _DOLLARS.fullmatch(text.strip())
    if found is None or not (found["whole"] or found["cents"]):
        raise ValueError("Enter an amount in dollars, like 12.99")
    if found["cents"] is not None and len(found["cents"]) > 2:
        raise ValueError("At most two digits after the point: dollars and cents")
    amount = Decimal(found["whole"].replace(",", "") or "0") + Decimal(f"0.{found['cents'] or 0}")
    return int(amount * 100)
