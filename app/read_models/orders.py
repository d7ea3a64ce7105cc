"""Orders: each customer's orders with their timelines, for their owner and for admins."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.kernel.errors import NotFound, ValidationFailed
from app.kernel.messages import FieldError
from app.projections.orders import ORDERS, OrdersProjection
from app.projections.timeline import TimelineProjection
from app.queries import orders
from app.queries.orders import OrderView
from app.web.live_models import (
    Audience,
    Feed,
    LiveReadModel,
    Region,
    RegionRequest,
    fragment,
    item_id,
    owner,
    view_message,
)
from app.web.params import bounded_int

if TYPE_CHECKING:
    from app.services import Services

LISTED = 200
"""Orders a customer's list region shows."""
ALL_PER_PAGE = 50
"""Orders a page of "All orders" shows (the admin's, paged with `?page=N`)."""
MAX_PAGE = 1_000_000


async def load(services: Services, owned_keys: list[str]) -> list[OrderView | None]:
    """Orders by `<customer>/<order id>`: an order whose customer is not that one is none."""
    found = await orders.get_orders(services.read_side, [item_id(key) for key in owned_keys])
    return [
        order if order is not None and order.customer == owner(key) else None
        for key, order in zip(owned_keys, found, strict=True)
    ]


def page_number(raw: str) -> int:
    """`?page=` of "All orders": 1 when absent; anything but a whole number is a 422."""
    if not raw:
        return 1
    number = bounded_int(raw, 1, MAX_PAGE)
    if number is None:
        raise ValidationFailed([FieldError("$.page", f"a whole number from 1 to {MAX_PAGE}")])
    return number


async def rows(asked: RegionRequest[Services]) -> list[OrderView]:
    """The asker's orders; with `?all=1`, an admin's view of everyone's (`&page=N`)."""
    actor = asked.actor
    if actor.username is None:
        raise NotFound()
    if asked.query.get("all") == "1" and actor.has_role("admin"):
        number = page_number(asked.query.get("page", ""))
        found = await orders.orders_page(
            asked.services.read_side, None, page=number, per_page=ALL_PER_PAGE
        )
        return found.orders
    return await orders.list_orders(asked.services.read_side, actor.username, limit=LISTED)


async def detail(asked: RegionRequest[Services]) -> list[OrderView]:
    order = await orders.visible_order(
        asked.services.read_side, asked.actor, asked.path["order_id"]
    )
    if order is None:
        raise NotFound("No such order")
    return [order]


DECLARED: LiveReadModel[Services, OrderView] = LiveReadModel(
    view=ORDERS,
    projections=(
        Feed(OrdersProjection, audited=True),
        Feed(TimelineProjection, audited=True),
    ),
    load=load,
    fragment=fragment("order_row", "order_detail", item="o"),
    watchers=Audience.OWNER_OR_ADMINS,
    message=view_message("orders", key=item_id),
    regions=(
        Region("orders", "/fragments/orders", rows, fragment("order_row", item="o")),
        Region(
            "order",
            "/fragments/orders/{order_id}",
            detail,
            fragment("order_detail", item="o"),
            swap="outerHTML",
            target="find section",
        ),
    ),
)
