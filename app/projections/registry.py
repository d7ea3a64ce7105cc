"""Which projections each worker runs."""

from __future__ import annotations

from typing import Any

from app.config import Settings
from app.domain.events import event_decoder
from app.kernel.projection import Projection
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


def build(
    names: tuple[str, ...], settings: Settings, metrics: PipelineMetrics | None = None
) -> list[Projection[Any]]:
    decoder = event_decoder()
    made: dict[str, Projection[Any]] = {
        "catalog": CatalogProjection(decoder),
        "low_stock": LowStockProjection(decoder, settings.low_stock_threshold),
        "command_log": CommandLogProjection(metrics.finished if metrics else None),
        "orders": OrdersProjection(decoder),
        "timeline": TimelineProjection(decoder),
        "sales": SalesProjection(decoder),
        "notifications": NotificationsProjection(),
    }
    return [made[name] for name in names]
