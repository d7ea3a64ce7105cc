"""What a projection tells the WebSocket hubs: an item of a view changed.

A `View` is a live view's name on the change notices, declared once as a constant beside the
code that announces it (`CATALOG = View("catalog")`) and named by that constant everywhere
else, so a misspelt view is a NameError, and a plain string where a view belongs is a mypy
error. (A NewType costs nothing at run time: on the wire it is the string.)

`Change` is the one type of a change, from the projection that announces it to the hub that
pushes it: a projection says `Change(CATALOG, sku)`; a hub that reads the notice back from its
stream fills in the rest (the read position, when it was committed, its traces).
"""

from __future__ import annotations

from typing import NewType

import msgspec

View = NewType("View", str)


class Change(msgspec.Struct, frozen=True):
    """Item `key` of `view` changed (e.g. CATALOG, "SKU-1")."""

    view: View
    key: str
    position: str | None = None
    """The read position it reflects, once read off a notice (None: unknown)."""
    at: float = 0.0
    """When the change was committed (s, Redis's clock), if known: for the push latency."""
    trace: str = ""
    """The notice's traceparent if the change is traced (space-separated, when it stands for
    several traced changes of the item)."""
    taken_ns: int = 0
    """When the notice was taken off its stream (a traced change's push span starts there)."""
