"""Masking payloads for operators' eyes: no card data, tokens, secrets or e-mail addresses.

Values under sensitive-looking names are replaced whatever they hold; JSON held in strings is
opened and masked too; e-mail addresses and card-number-like digit runs are replaced
wherever they appear. The result is one line of JSON, cut to a length.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec

MASK = "•••"
LIMIT = 400
_NAMES = (
    r"card|token|cvv|cvc|pan|password|passwd|secret|e_?mail|phone|ssn|iban|session|csrf"
    r"|cookie|authori[sz]ation|api_?key"
)
SENSITIVE = re.compile(_NAMES, re.IGNORECASE)
QUOTED_PAIR = re.compile(rf'("[^"]*(?:{_NAMES})[^"]*"\s*:\s*)("(?:[^"\\]|\\.)*"|[^,}}\s]+)', re.I)
"""`"card_number": "..."` inside text that is not valid JSON (a garbled entry)."""
EMAIL = re.compile(r"[^\s@\"'<>]+@[^\s@\"'<>]+\.[A-Za-z]{2,}")
DIGIT_RUN = re.compile(r"(?<![\d-])\d{13,19}(?![\d-])")
"""13-19 digits, not a stream id's half (`1733000000000-0`)."""


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _scrub(text: str) -> str:
    text = QUOTED_PAIR.sub(lambda m: f'{m.group(1)}"{MASK}"', text)
    text = EMAIL.sub(MASK, text)
    return DIGIT_RUN.sub(lambda m: MASK if luhn_valid(m.group()) else m.group(), text)


def masked(value: object) -> object:
    """`value` with every sensitive part replaced (dicts, lists, JSON inside strings)."""
    if isinstance(value, Mapping):
        return {
            str(name): MASK if SENSITIVE.search(str(name)) else masked(item)
            for name, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [masked(item) for item in value]
    if isinstance(value, str):
        stripped = value.lstrip()
        if stripped[:1] in ("{", "["):
            try:
                return masked(msgspec.json.decode(value))
            except msgspec.DecodeError:
                pass
        return _scrub(value)
    return value


def masked_payload(fields: Mapping[str, str], limit: int = LIMIT) -> str:
    """A stream entry's fields, masked, as one line of JSON of at most `limit` characters."""
    line = msgspec.json.encode(masked(fields)).decode()
    return line if len(line) <= limit else line[: limit - 1] + "…"
