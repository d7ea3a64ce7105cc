"""The storefront's live views, who may watch which topic, and where changes are announced.

Each live view is one entry of `live_views`: its name in the change notices, the topics an
item goes to, its loader from the read side, its HTML fragment and its JSON message. A new
read model that pages should follow adds its projection, its query, its template and one
entry here.

Topics: `catalog` (anyone); `orders:<user>`, `commands:<user>`, `notifications:<user>` (that
user); `orders:*` and `admin` (admins). Keys of per-user views start with their owner
(`alice/<order id>`), so an item is published to its owner's topic and nobody else's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import msgspec
from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.command_status import CommandStatus, Progress
from app.kernel.command_status_store import CommandStatusStore
from app.kernel.messages import Actor, Problem
from app.kernel.notices import read_status_notice, read_view_notice
from app.kernel.partitions import partition_of_command
from app.kernel.positions import entry_time
from app.queries import catalog, notifications, orders, sales
from app.queries.admin_status import AdminStatus, admin_status
from app.queries.history import History, history
from app.queries.sales import LowStock, SalesDashboard
from app.services import Services
from app.web.live import Change, LiveView, NoticeStream, view_message
from app.web.render import Renderer
from app.web.watched import watched_consumers

ADMIN_STATUS_SECONDS = 1.0
HISTORY_SECONDS = 5.0
SALES_SECONDS = 0.25
PER_USER = ("orders", "commands", "notifications")


def grant(actor: Actor, requested: Iterable[str]) -> tuple[set[str], list[str]]:
    """The topics this actor may watch, of those requested, and the requested ones refused."""
    granted: set[str] = set()
    refused: list[str] = []
    for topic in requested:
        if topic == "catalog":
            granted.add("catalog")
        elif topic in PER_USER and actor.username is not None:
            if topic == "orders" and actor.has_role("admin"):
                granted.add("orders:*")
            else:
                granted.add(f"{topic}:{actor.username}")
        elif topic == "admin" and actor.has_role("admin"):
            granted.add("admin")
        else:
            refused.append(topic)
    return granted, refused


class CommandMessage(msgspec.Struct, tag_field="type", tag="command"):
    """A command's status, pushed to its sender: the newest one replaces any not yet sent."""

    command_id: str
    status: str
    step: str | None
    progress: Progress | None
    error: Problem | None
    position: str | None


class SalesView(msgspec.Struct, frozen=True):
    sales: SalesDashboard
    low_stock: list[LowStock]


def command_message(_key: str, _position: str | None, view: CommandStatus) -> CommandMessage:
    return CommandMessage(
        command_id=view.command_id,
        status=view.status,
        step=view.steps[-1].name if view.steps else None,
        progress=view.progress,
        error=view.error,
        position=view.position,
    )


def owner(key: str) -> str:
    return key.partition("/")[0]


def item_id(key: str) -> str:
    return key.partition("/")[2]


# --- loaders: every key of a batch in one round trip ---------------------------------------


async def load_orders(read: Redis, owned_keys: list[str]) -> list[orders.OrderView | None]:
    found = await orders.get_orders(read, [item_id(key) for key in owned_keys])
    return [
        order if order is not None and order.customer == owner(key) else None
        for key, order in zip(owned_keys, found, strict=True)
    ]


async def load_statuses(
    statuses: CommandStatusStore, partitions: int, owned_keys: list[str]
) -> list[CommandStatus | None]:
    located = [(partition_of_command(item_id(key), partitions), item_id(key)) for key in owned_keys]
    found = await statuses.read(located)
    return [
        stored.view if stored is not None and stored.sender == owner(key) else None
        for key, stored in zip(owned_keys, found, strict=True)
    ]


async def load_sales(read: Redis, _keys: list[str]) -> list[SalesView | None]:
    return [SalesView(await sales.sales_dashboard(read), await sales.low_stock(read))]


async def load_admin_status(services: Services, _keys: list[str]) -> list[AdminStatus | None]:
    status = await admin_status(
        services.write, services.read, watched_consumers(), services.settings.partitions
    )
    return [status]


async def load_history(read: Redis, _keys: list[str]) -> list[History | None]:
    return [await history(read)]


# --- the registry -----------------------------------------------------------------------------


def live_views(services: Services, render: Renderer) -> list[LiveView[Any]]:
    read = services.read
    return [
        LiveView[catalog.ProductView](
            "catalog",
            topics=lambda _sku: ("catalog",),
            load=partial(catalog.get_products, read),
            fragment=lambda product: render.product_row(product, oob=True),
            message=view_message("catalog"),
        ),
        LiveView[orders.OrderView](
            "orders",
            topics=lambda key: (f"orders:{owner(key)}", "orders:*"),
            load=partial(load_orders, read),
            fragment=render.order_push,
            message=view_message("orders", key=item_id),
        ),
        LiveView[notifications.Inbox](
            "notifications",
            topics=lambda user: (f"notifications:{user}",),
            load=partial(notifications.inboxes, read),
            fragment=lambda inbox: render.bell(inbox, oob=True),
            message=view_message("notifications", positioned=False),
        ),
        LiveView[CommandStatus](
            "commands",
            topics=lambda key: (f"commands:{owner(key)}",),
            load=partial(load_statuses, services.statuses, services.settings.partitions),
            fragment=lambda status: render.command_status(status, oob=True),
            message=command_message,
        ),
        LiveView[SalesView](
            "admin",
            key={"sales": "sales", "low_stock": "sales"}.get,
            topics=lambda _key: ("admin",),
            load=partial(load_sales, read),
            fragment=lambda view: render.sales(view.sales, view.low_stock, oob=True),
            message=view_message("admin", positioned=False),
            every=SALES_SECONDS,
        ),
        LiveView[AdminStatus](
            "admin",
            key=lambda _key: None,
            topics=lambda _key: ("admin",),
            load=partial(load_admin_status, services),
            fragment=lambda status: render.admin_status(status, oob=True),
            message=view_message("admin", positioned=False),
            every=ADMIN_STATUS_SECONDS,
            refresh=("status",),
        ),
        LiveView[History](
            "admin",
            key=lambda _key: None,
            topics=lambda _key: ("admin",),
            load=partial(load_history, read),
            fragment=lambda found: render.admin_history(found, oob=True),
            message=view_message("admin", positioned=False),
            every=HISTORY_SECONDS,
            refresh=("history",),
        ),
    ]


# --- where changes are announced -------------------------------------------------------------


def view_change(entry_id: str, fields: dict[str, str]) -> Change | None:
    """`rm:notices` (written by projections): a view notice, its time the event's commit (from
    its read position) or else its own."""
    notice = read_view_notice(fields)
    if notice is None:
        return None
    position = notice.position or None
    return Change(
        notice.view,
        notice.key,
        position,
        at=entry_time(position.partition(":")[2]) if position else entry_time(entry_id),
        trace=notice.trace,
    )


def status_change(entry_id: str, fields: dict[str, str]) -> Change | None:
    """`{pN}:notices` (written with command statuses, so its id's time is the commit's): a
    status notice, pushed to its sender."""
    notice = read_status_notice(fields)
    if notice is None or not notice.sender:
        return None
    return Change(
        "commands",
        f"{notice.sender}/{notice.command_id}",
        None,
        at=entry_time(entry_id),
        trace=notice.trace,
    )


def notice_streams(services: Services) -> Sequence[NoticeStream]:
    partitions = range(services.settings.partitions)
    return [
        NoticeStream(services.read, keys.view_notices(), view_change),
        *(NoticeStream(services.write, keys.status_notices(p), status_change) for p in partitions),
    ]
