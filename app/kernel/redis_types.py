"""Typed views of redis-py replies. Every client decodes responses, so replies are text.

redis-py's stubs describe replies as `bytes | str | ...` unions (they cannot know about
decode_responses); these helpers state what we get once, instead of casting at each call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

FieldMap = Mapping[Any, Any]
"""A `mapping=` argument for HSET/XADD (the stubs' key type is an invariant union)."""


def field_map(values: Mapping[str, object]) -> FieldMap:
    return values


def text(value: object) -> str:
    return cast(str, value)


def optional_text(value: object) -> str | None:
    return cast(str | None, value)


def text_dict(value: object) -> dict[str, str]:
    return cast(dict[str, str], value)


def text_list(value: object) -> list[str]:
    return cast(list[str], value)


StreamEntry = tuple[str, str, dict[str, str]]
"""(stream key, entry id, fields)"""


def stream_entries(reply: object) -> list[StreamEntry]:
    """Flatten an XREAD / XREADGROUP reply; a deleted entry comes back with empty fields."""
    entries: list[StreamEntry] = []
    for stream, items in cast(
        list[tuple[str, list[tuple[str, dict[str, str] | None]]]], reply or []
    ):
        for entry_id, fields in items:
            entries.append((stream, entry_id, fields or {}))
    return entries


def range_entries(reply: object) -> list[tuple[str, dict[str, str]]]:
    """An XRANGE reply: (entry id, fields) in order."""
    return cast(list[tuple[str, dict[str, str]]], reply or [])
