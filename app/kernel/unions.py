"""The classes of a union of tagged Structs, and the tags they are written under.

A union alias such as `ProductEvent = ProductCreated | ProductRenamed | ...` is the one
declaration of which messages exist; every list of them (the type tags a consumer decodes,
a test's list of every event) is derived from it here, never kept by hand beside it.
"""

from __future__ import annotations

from types import UnionType
from typing import Union, get_args, get_origin

import msgspec


def members(union: object) -> tuple[type[msgspec.Struct], ...]:
    """The Struct classes of `union` (one class, or a union of them), in declared order."""
    declared = get_args(union) if get_origin(union) in (Union, UnionType) else (union,)
    classes: list[type[msgspec.Struct]] = []
    for member in declared:
        if not (isinstance(member, type) and issubclass(member, msgspec.Struct)):
            raise TypeError(f"{member!r} is not a msgspec Struct class")
        classes.append(member)
    return tuple(classes)


def tag(struct_type: type[msgspec.Struct]) -> str:
    """The tag a Struct is encoded with (its `type` field), e.g. "ProductCreated"."""
    value = struct_type.__struct_config__.tag
    if not isinstance(value, str):
        raise TypeError(f"{struct_type.__name__} needs a string tag")
    return value


def tags(union: object) -> frozenset[str]:
    """The tags of every class of `union`."""
    return frozenset(tag(member) for member in members(union))
