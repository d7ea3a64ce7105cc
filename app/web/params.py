"""Values a handler reads from a query string or a form field by hand."""

from __future__ import annotations

import re

_WHOLE = re.compile(r"[0-9]{1,9}")
"""ASCII digits only: `str.isdigit()` also accepts "²" or "٣", which `int()` refuses."""


def bounded_int(raw: str, low: int, high: int) -> int | None:
    """`raw` as a whole number from `low` to `high`, or None."""
    if not _WHOLE.fullmatch(raw):
        return None
    value = int(raw)
    return value if low <= value <= high else None
