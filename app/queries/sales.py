"""The sales dashboard and the low-stock list (admin)."""

from __future__ import annotations

import time
from typing import cast

import msgspec

from app.kernel.read_side import ReadSide, merged, summed
from app.projections import keys
from app.projections.low_stock import LowStock as LowStock  # the list's row
from app.projections.sales import TOTALS, SalesProjection

PROJECTIONS = (SalesProjection.name,)
TOP_SELLERS = 10


class TopSeller(msgspec.Struct, frozen=True):
    sku: str
    units: int


class MinuteCount(msgspec.Struct, frozen=True):
    minute: int
    orders: int


class SalesDashboard(msgspec.Struct, frozen=True):
    revenue_cents: int
    refunded_cents: int
    orders_placed: int
    orders_by_status: dict[str, int]
    top_sellers: list[TopSeller]
    orders_per_minute: list[MinuteCount]


async def sales_dashboard(read: ReadSide, minutes: int = 30) -> SalesDashboard:
    """Every partition's totals, statuses and minutes added up (one pipeline), and the top
    sellers over all partitions (kernel/read_side.py: `summed_top`)."""
    now_minute = int(time.time() // 60 * 60)
    wanted = [now_minute - 60 * i for i in range(minutes - 1, -1, -1)]
    totals, by_status, per_minute = await read.gather(
        lambda pipe, p: pipe.hgetall(keys.sales_totals(p)),
        lambda pipe, p: pipe.hgetall(keys.sales_by_status(p)),
        # one MGET per partition (its keys share a slot); a Cluster pipeline refuses the
        # `mget` method, which it cannot tell is single-slot, not the command
        lambda pipe, p: pipe.execute_command(
            "MGET", *(keys.sales_per_minute(p, minute) for minute in wanted)
        ),
    )
    top = await read.summed_top(keys.sales_top, TOP_SELLERS)
    counted = TOTALS.read({name: str(value) for name, value in summed(totals).items()})
    statuses = summed(by_status)
    return SalesDashboard(
        revenue_cents=counted.revenue_cents,
        refunded_cents=counted.refunded_cents,
        orders_placed=counted.orders_placed,
        orders_by_status={k: v for k, v in sorted(statuses.items()) if v},
        top_sellers=[TopSeller(sku, int(units)) for sku, units in top],
        orders_per_minute=[
            MinuteCount(minute, sum(int(counts[i] or 0) for counts in per_minute))
            for i, minute in enumerate(wanted)
        ],
    )


async def low_stock(read: ReadSide, limit: int = 50) -> list[LowStock]:
    """The products lowest on stock first (ties by sku), over every partition."""
    (lowest,) = await read.gather(
        lambda pipe, p: pipe.zrange(keys.low_stock(p), 0, limit - 1, withscores=True)
    )
    pieces = cast(list[list[tuple[str, float]]], lowest)  # each by (score, sku), as ZRANGE
    rows = merged(pieces, key=lambda item: (item[1], item[0]), limit=limit)
    return [LowStock(sku, int(score)) for sku, score in rows]
