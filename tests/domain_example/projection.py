"""The tallies read model: one hash per tally, its fields those of `TallyRow`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import assert_never

import msgspec

from app.kernel.keys import read_model
from app.kernel.projection import Applied, EventProjection
from app.kernel.read_model_writes import ReadModelWrites
from app.kernel.rows import HashRow
from app.kernel.views import Change, View
from tests.domain_example.tally import TallyAdded, TallyEvent, TallyOpened

TALLIES = View("tallies")
"""Its live view: a tally changed (key: its id)."""


class TallyRow(msgspec.Struct, frozen=True):
    tally_id: str
    total: int
    adds: int


ROW = HashRow(TallyRow)


def tally_key(partition: int, tally_id: str) -> str:
    return read_model("tally", partition, tally_id)


class TallyProjection(EventProjection[TallyEvent]):
    name = "tallies"

    def apply(self, item: Applied[TallyEvent], tx: ReadModelWrites) -> Iterable[Change]:
        event = item.event
        match event:
            case TallyOpened():
                tx.hset(
                    tally_key(tx.partition, event.tally_id),
                    mapping=ROW.whole(TallyRow(event.tally_id, 0, 0)),
                )
            case TallyAdded():
                fields = ROW.some(total=event.total, adds=event.adds)
                tx.hset(tally_key(tx.partition, event.tally_id), mapping=fields)
            case _:
                assert_never(event)
        return [Change(TALLIES, event.tally_id)]
