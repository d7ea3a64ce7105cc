"""Where a PlaceOrder's time goes, from its traces (measured by hand, no assertions):

    .venv/bin/python -m tests.bench.order_waterfall [--orders 300] [--rate 50] [--traced 30]

The stack of tests.bench.orders_latency (web, command workers, process manager, projector,
notifier; PAYMENT_LATENCY_MS=0) takes `--orders` orders at a paced `--rate`, every
`orders/traced`-th one sent with a sampled `traceparent` (as the pages send it), so its spans
land in the span store. Each traced order's waterfall (app/queries/waterfall.py) is read back,
and its bars are summed up by label in the order they first appear: how many orders had
such a bar, and the median and p90 of its start (ms from the POST's span) and duration. The
gaps between bars are the waits to remove.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics

import httpx

from app.config import load_settings
from app.kernel.heartbeat import live_heartbeats
from app.queries.waterfall import Waterfall, command_waterfall
from app.services import build_services
from tests.bench.orders_latency import (
    ADMIN,
    PRODUCTS,
    http_submitter,
    orders_stack,
    percentile,
)
from tests.support.orders_helpers import create_products, wait_all_final
from tests.support.polling import eventually


def traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def summary(waterfalls: list[Waterfall]) -> list[str]:
    """One line per bar label: in how many waterfalls, start and duration p50 / p90."""
    starts: dict[str, list[float]] = {}
    durations: dict[str, list[float]] = {}
    for fall in waterfalls:
        seen: set[str] = set()
        for bar in fall.bars:
            name = f"{'  ' * bar.depth}{bar.label}"
            if name in seen:  # a second bar of the same name (two lines): its own row
                name += " (again)"
            seen.add(name)
            starts.setdefault(name, []).append(bar.start_ms)
            durations.setdefault(name, []).append(bar.duration_ms)
    order = sorted(starts, key=lambda n: statistics.median(starts[n]))
    lines = [f"{'bar':<58} {'n':>4} {'start p50':>10} {'p90':>7} {'took p50':>9} {'p90':>7}"]
    for name in order:
        s, d = starts[name], durations[name]
        lines.append(
            f"{name[:58]:<58} {len(s):>4} {statistics.median(s):>10.2f} "
            f"{percentile(s, 0.9):>7.2f} {statistics.median(d):>9.2f} {percentile(d, 0.9):>7.2f}"
        )
    totals = [fall.total_ms for fall in waterfalls]
    lines.append(
        f"whole trace: p50 {statistics.median(totals):.2f} ms, p90 {percentile(totals, 0.9):.2f} ms"
    )
    return lines


async def measure(args: argparse.Namespace, redis_url: str, port: int) -> None:
    settings = load_settings({"REDIS_URL": redis_url, "APP_ENV": "test", "PARTITIONS": "4"})
    services = build_services(settings)
    base = f"http://127.0.0.1:{port}"
    clients: list[httpx.AsyncClient] = []
    try:
        await eventually(
            lambda: live_heartbeats(services.write),
            until=lambda beats: len(beats) >= 6,
            timeout=60,
            message="every process heartbeating",
        )
        await create_products(services, ADMIN, PRODUCTS, price_cents=500)
        every = max(1, args.orders // max(1, args.traced))

        def traced(n: int) -> bool:
            return n % every == every - 1

        submit = await http_submitter(
            base, clients, lambda n: {"traceparent": traceparent()} if traced(n) else {}
        )
        started = asyncio.get_running_loop().time()

        async def one(n: int) -> str:
            at = started + n / args.rate
            await asyncio.sleep(max(0.0, at - asyncio.get_running_loop().time()))
            return await submit(n)

        ids = await asyncio.gather(*(one(n) for n in range(args.orders)))
        outcome = await wait_all_final(services, list(ids), within=600)
        assert all(s == "succeeded" for s in outcome.values()), outcome
        await asyncio.sleep(1.0)  # the processes' span batches land (a bench may wait on time)
        falls = [
            await command_waterfall(services.read, command_id)
            for n, command_id in enumerate(ids)
            if traced(n)
        ]
        found = [fall for fall in falls if fall is not None]
        print(f"{len(found)} traced orders of {args.orders} at {args.rate:g}/s")
        print("\n".join(summary(found)))
    finally:
        for client in clients:
            await client.aclose()
        await services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--traced", type=int, default=30)
    args = parser.parse_args()
    with orders_stack(commands=2) as (redis_url, port):
        asyncio.run(measure(args, redis_url, port))


if __name__ == "__main__":
    main()
