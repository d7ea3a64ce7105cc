"""Which projections each worker runs, which a rebuild may replay and which the audit checks:
all read off the read models' declarations (app/read_models/), none kept here by hand."""

from __future__ import annotations

import functools

from app.config import Settings
from app.kernel.projection import AnyProjection, ProjectionFactory
from app.observability.metrics import PipelineMetrics
from app.projections.setup import ProjectorSetup
from app.read_models import DECLARED
from app.web.live_models import Feed


def _feeds() -> dict[str, Feed[ProjectorSetup]]:
    found: dict[str, Feed[ProjectorSetup]] = {}
    for model in DECLARED:
        for feed in model.projections:
            if found.setdefault(feed.name, feed) is not feed:
                raise ValueError(f"projection {feed.name!r} is declared twice")
    return found


FEEDS = _feeds()
PROJECTOR = tuple(name for name, feed in FEEDS.items() if feed.worker == "projector")
NOTIFIER = tuple(name for name, feed in FEEDS.items() if feed.worker == "notifier")
ALL = PROJECTOR + NOTIFIER
REBUILDABLE = tuple(name for name in ALL if FEEDS[name].rebuildable)
AUDITED = tuple(name for name in ALL if FEEDS[name].audited)


def build(
    names: tuple[str, ...], settings: Settings, metrics: PipelineMetrics | None = None
) -> list[AnyProjection]:
    setup = ProjectorSetup(settings, metrics)
    return [FEEDS[name].made(setup) for name in names]


def rebuildable(settings: Settings) -> dict[str, ProjectionFactory]:
    """A fresh instance of each projection a rebuild may replay, by name."""
    return {name: functools.partial(_one, name, settings) for name in REBUILDABLE}


def _one(name: str, settings: Settings) -> AnyProjection:
    (projection,) = build((name,), settings)
    return projection
