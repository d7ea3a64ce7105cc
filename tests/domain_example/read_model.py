"""The tallies' live read model, declared once: the projection that writes it, the query that
reads it, its fragment, and who may watch it (anyone)."""

from __future__ import annotations

from pathlib import Path

from app.kernel.read_side import ReadSide
from app.web.live_models import Audience, Feed, LiveReadModel, fragment
from tests.domain_example.projection import TALLIES, TallyProjection, TallyRow
from tests.domain_example.query import tallies

TEMPLATES = Path(__file__).with_name("templates")

DECLARED: LiveReadModel[ReadSide, TallyRow] = LiveReadModel(
    view=TALLIES,
    projections=(Feed(TallyProjection),),
    load=tallies,
    fragment=fragment("tally", item="t"),
    watchers=Audience.ANYONE,
)
