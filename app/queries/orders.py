"""Order queries: a customer's orders, one order with its timeline.

An order's keys are in its partition; the lists of orders (a customer's, everyone's) are kept
per partition and merged newest first, as one sorted set would order them."""

from __future__ import annotations

from typing import cast

import msgspec

from app.kernel.clock import iso
from app.kernel.messages import Actor
from app.kernel.read_side import ReadSide, Scored, merged
from app.projections import keys
from app.projections.orders import ORDER, Line, OrdersProjection
from app.projections.timeline import TimelineEntry, TimelineProjection

PROJECTIONS = (OrdersProjection.name, TimelineProjection.name)


class TimelineStep(msgspec.Struct, frozen=True):
    status: str
    at: str | None
    detail: str = ""


class OrderView(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    customer: str
    status: str
    lines: list[Line]
    total_cents: int
    card_last4: str
    placed_at: str | None
    reason: str
    refunded: bool
    timeline: list[TimelineStep]


_step = msgspec.json.Decoder(TimelineEntry)


def _view(record: dict[str, str], steps: list[str]) -> OrderView:
    row = ORDER.read(record)
    return OrderView(
        order_id=row.order_id,
        customer=row.customer,
        status=row.status,
        lines=row.lines,
        total_cents=row.total_cents,
        card_last4=row.card_last4,
        placed_at=iso(row.placed_at),
        reason=row.reason,
        refunded=bool(row.refunded),
        timeline=[TimelineStep(s.status, iso(s.at), s.detail) for s in map(_step.decode, steps)],
    )


async def get_order(read: ReadSide, order_id: str) -> OrderView | None:
    return (await get_orders(read, [order_id]))[0]


async def get_orders(read: ReadSide, order_ids: list[str]) -> list[OrderView | None]:
    """Several orders in one round trip, in the order asked (None for an unknown id)."""
    if not order_ids:
        return []
    async with read.redis.pipeline(transaction=False) as pipe:
        for order_id in order_ids:
            partition = read.partition_of(order_id)
            pipe.hgetall(keys.order(partition, order_id))
            pipe.lrange(keys.timeline(partition, order_id), 0, -1)
        replies = await pipe.execute()
    return [
        _view(record, steps) if record else None
        for record, steps in zip(replies[::2], replies[1::2], strict=True)
    ]


async def list_orders(read: ReadSide, customer: str | None, *, limit: int = 50) -> list[OrderView]:
    """Newest first: one customer's orders, or everyone's (customer=None, admins only)."""
    limit = max(1, min(limit, 500))

    def index(partition: int) -> str:
        if customer is None:
            return keys.all_orders(partition)
        return keys.orders_of(partition, customer)

    (newest,) = await read.gather(
        lambda pipe, p: pipe.zrevrange(index(p), 0, limit - 1, withscores=True)
    )
    pieces = cast(list[list[Scored]], newest)  # each newest first, as ZREVRANGE orders
    ranked = merged(pieces, key=lambda item: (item[1], item[0]), limit=limit, reverse=True)
    return [order for order in await get_orders(read, [i for i, _ in ranked]) if order]


class OrdersPage(msgspec.Struct, frozen=True):
    """One page of a list of orders, newest first, and how many there are in all."""

    orders: list[OrderView]
    total: int
    page: int
    """1-based."""
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def first(self) -> int:
        """The 1-based rank of its first order (0 when it has none)."""
        return (self.page - 1) * self.per_page + 1 if self.orders else 0

    @property
    def last(self) -> int:
        return self.first + len(self.orders) - 1 if self.orders else 0


async def orders_page(
    read: ReadSide, customer: str | None, *, page: int = 1, per_page: int = 50
) -> OrdersPage:
    """Page `page` of one customer's orders, or everyone's (customer=None, admins only), with
    the count: the partitions' indexes counted and their newest merged (each asked for as
    many as the page's end: what one sorted set would rank), then the page's orders."""

    def index(partition: int) -> str:
        if customer is None:
            return keys.all_orders(partition)
        return keys.orders_of(partition, customer)

    end = page * per_page
    totals, newest = await read.gather(
        lambda pipe, p: pipe.zcard(index(p)),
        lambda pipe, p: pipe.zrevrange(index(p), 0, end - 1, withscores=True),
    )
    pieces = cast(list[list[Scored]], newest)
    ranked = merged(pieces, key=lambda item: (item[1], item[0]), limit=end, reverse=True)
    ids = [order_id for order_id, _ in ranked[end - per_page :]]
    found = [order for order in await get_orders(read, ids) if order is not None]
    return OrdersPage(found, sum(int(n) for n in totals), page, per_page)


async def owns(read: ReadSide, customer: str, order_id: str) -> bool:
    """Scoped by the session's user: only orders indexed under that customer are theirs."""
    index = keys.orders_of(read.partition_of(order_id), customer)
    return await read.redis.zscore(index, order_id) is not None


async def visible_order(read: ReadSide, actor: Actor, order_id: str) -> OrderView | None:
    """The order if this actor may see it: admins any, signed-in customers only their own."""
    if actor.has_role("admin"):
        return await get_order(read, order_id)
    if actor.username is None or not await owns(read, actor.username, order_id):
        return None
    return await get_order(read, order_id)
