"""The sales dashboard and the low-stock list (admin)."""

from __future__ import annotations

import time
from typing import cast

import msgspec
from redis.asyncio import Redis

from app.projections import keys
from app.projections.low_stock import LowStock as LowStock  # the list's row
from app.projections.sales import TOTALS, SalesProjection

PROJECTIONS = (SalesProjection.name,)


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


async def sales_dashboard(read: Redis, minutes: int = 30) -> SalesDashboard:
    now_minute = int(time.time() // 60 * 60)
    wanted = [now_minute - 60 * i for i in range(minutes - 1, -1, -1)]
    async with read.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.sales_totals())
        pipe.hgetall(keys.sales_by_status())
        pipe.zrevrange(keys.sales_top(), 0, 9, withscores=True)
        pipe.mget([keys.sales_per_minute(minute) for minute in wanted])
        totals, by_status, top, per_minute = await pipe.execute()
    counted = TOTALS.read(totals)
    return SalesDashboard(
        revenue_cents=counted.revenue_cents,
        refunded_cents=counted.refunded_cents,
        orders_placed=counted.orders_placed,
        orders_by_status={k: int(v) for k, v in sorted(by_status.items()) if int(v)},
        top_sellers=[TopSeller(sku, int(units)) for sku, units in top if units > 0],
        orders_per_minute=[
            MinuteCount(m, int(c or 0)) for m, c in zip(wanted, per_minute, strict=True)
        ],
    )


async def low_stock(read: Redis, limit: int = 50) -> list[LowStock]:
    rows = await read.zrange(keys.low_stock(), 0, limit - 1, withscores=True)
    return [LowStock(sku, int(score)) for sku, score in cast(list[tuple[str, float]], rows)]
