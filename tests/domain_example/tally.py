"""Tallies: a named count that only goes up. Its aggregate, command, events and decision."""

from __future__ import annotations

from typing import Annotated

import msgspec

from app.kernel.registry import AggregateKind, CommandSpec, Context, Decision

COUNTERS = frozenset({"counter"})
"""The role that may add to a tally."""


class Tally(msgspec.Struct, frozen=True):
    tally_id: str
    total: int
    adds: int


class AddToTally(msgspec.Struct, tag_field="type", tag=True, frozen=True):
    tally_id: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9-]{1,32}\Z")]
    amount: Annotated[int, msgspec.Meta(ge=1, le=1000)]


class TallyOpened(msgspec.Struct, tag_field="type", tag=True, frozen=True):
    tally_id: str


class TallyAdded(msgspec.Struct, tag_field="type", tag=True, frozen=True):
    tally_id: str
    amount: int
    total: int
    adds: int


TallyEvent = TallyOpened | TallyAdded
"""Every event of a tally: the one declaration the projection is typed on."""

TALLY = AggregateKind("tally", Tally)


def add(command: AddToTally, state: Tally | None, _context: Context) -> Decision[Tally]:
    """The first addition opens the tally."""
    opened = state or Tally(command.tally_id, 0, 0)
    after = Tally(opened.tally_id, opened.total + command.amount, opened.adds + 1)
    added = TallyAdded(after.tally_id, command.amount, after.total, after.adds)
    events: list[msgspec.Struct] = [added] if state else [TallyOpened(after.tally_id), added]
    return Decision(after, events)


def tally_id(command: AddToTally) -> str:
    return command.tally_id


SPEC = CommandSpec(AddToTally, TALLY, tally_id, add, COUNTERS)
