"""The sales dashboard (admin): revenue, orders by status, top sellers, orders per minute,
and the products low on stock. Pushed at most four times a second; its page is made from
this declaration (/admin/sales)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from app.projections.low_stock import LowStockProjection
from app.projections.sales import DASHBOARD, SalesProjection
from app.projections.setup import ProjectorSetup
from app.queries import sales
from app.queries.sales import LowStock, SalesDashboard
from app.web.live_models import (
    Audience,
    Feed,
    Fragment,
    LiveReadModel,
    Page,
    view_message,
)

if TYPE_CHECKING:
    from app.services import Services

KEY = "sales"
SECONDS = 0.25


class SalesView(msgspec.Struct, frozen=True):
    sales: SalesDashboard
    low_stock: list[LowStock]


async def load(services: Services, keys: list[str]) -> list[SalesView | None]:
    read = services.read_side
    view = SalesView(await sales.sales_dashboard(read), await sales.low_stock(read))
    return [view for _key in keys]


def low_stock(setup: ProjectorSetup) -> LowStockProjection:
    return LowStockProjection(setup.settings.low_stock_threshold)


DECLARED: LiveReadModel[Services, SalesView] = LiveReadModel(
    view=DASHBOARD,
    projections=(
        Feed(SalesProjection),
        Feed[ProjectorSetup](LowStockProjection, low_stock, audited=True),
    ),
    load=load,
    fragment=Fragment(("sales",), lambda view: {"d": view.sales, "low": view.low_stock}),
    watchers=Audience.ADMINS,
    topic="admin",
    message=view_message("admin", positioned=False),
    key=lambda _key: KEY,
    every=SECONDS,
    page=Page("/admin/sales", "Sales", KEY),
)
