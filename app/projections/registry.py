"""Which projections each worker runs."""

from __future__ import annotations

import functools

from app.config import Settings
from app.kernel.projection import AnyProjection, ProjectionFactory
from app.observability.metrics import PipelineMetrics
from app.projections.catalog import CatalogProjection
from app.projections.command_log import CommandLogProjection
from app.projections.low_stock import LowStockProjection
from app.projections.notifications import NotificationsProjection
from app.projections.orders import OrdersProjection
from app.projections.sales import SalesProjection
from app.projections.timeline import TimelineProjection

PROJECTOR = ("catalog", "low_stock", "command_log", "orders", "timeline", "sales")
NOTIFIER = ("notifications",)
ALL = PROJECTOR + NOTIFIER
REBUILDABLE = PROJECTOR
"""Read models a rebuild may replay. Not the notifications: the notifier's inbox holds what
its users did with it (read or not), which no stream records."""
AUDITED = ("catalog", "low_stock", "orders", "timeline")
"""Read models whose keys each aggregate owns (or owns a member or field of), so a sample of
aggregates re-derived from their events can be compared with them (see kernel/audit)."""


def build(
    names: tuple[str, ...], settings: Settings, metrics: PipelineMetrics | None = None
) -> list[AnyProjection]:
    made: dict[str, AnyProjection] = {
        "catalog": CatalogProjection(),
        "low_stock": LowStockProjection(settings.low_stock_threshold),
        "command_log": CommandLogProjection(metrics.finished if metrics else None),
        "orders": OrdersProjection(),
        "timeline": TimelineProjection(),
        "sales": SalesProjection(),
        "notifications": NotificationsProjection(settings.integration_retention_seconds),
    }
    return [made[name] for name in names]


def rebuildable(settings: Settings) -> dict[str, ProjectionFactory]:
    """A fresh instance of each projection a rebuild may replay, by name."""
    return {name: functools.partial(_one, name, settings) for name in REBUILDABLE}


def _one(name: str, settings: Settings) -> AnyProjection:
    (projection,) = build((name,), settings)
    return projection
