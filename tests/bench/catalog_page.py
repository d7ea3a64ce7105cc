"""A catalog page gathered over the partitions, measured by hand (no assertions):

    .venv/bin/python -m tests.bench.catalog_page [--partitions 64] [--products 10000]
        [--pages 2000] [--limit 50]

Starts a local 3-master Redis Cluster and, for a baseline, one Redis server; projects
`--products` ProductCreated events into each (the catalog projection, through the projector's
apply script, partition by partition), then asks `--pages` catalog pages of `--limit`
products, each after a random sku (the API's `after=`), one at a time, and reports the
latency of a page (p50, p99, max) on both, and the CPU this process spent per page. A page is
two round trips: one pipelined ZRANGEBYLEX per partition (one pipeline per node on the
Cluster), then the page's products.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

from app.adapters.redis_client import connect
from app.domain import products as p
from app.kernel.consumer import Entry
from app.kernel.partitions import partition_of
from app.kernel.projection import ProjectionHandler
from app.kernel.read_side import ReadSide
from app.projections.catalog import CatalogProjection
from app.queries import catalog
from tests.support.projection_harness import entry
from tests.support.redis_cluster import running_cluster
from tests.support.redis_server import running_redis


def _skus(count: int) -> list[str]:
    return [f"SKU-{n:06d}" for n in range(count)]


async def fill(read: Redis, partitions: int, skus: list[str]) -> None:
    by_partition: dict[int, list[Entry]] = {}
    for n, sku in enumerate(skus):
        made = entry(p.ProductCreated(sku, f"Item {sku}", 100 + n % 900, p.Stock(50, 0, 0)))
        partition = partition_of(sku, partitions)
        entries = by_partition.setdefault(partition, [])
        entries.append(Entry(f"{len(entries) + 1}-0", partition, made.fields))
    handler = ProjectionHandler(CatalogProjection(), read)
    for partition, entries in sorted(by_partition.items()):
        for start in range(0, len(entries), 500):
            await handler.handle(partition, entries[start : start + 500])


async def measure(read: ReadSide, skus: list[str], pages: int, limit: int) -> dict[str, float]:
    picker = random.Random(7)
    for _ in range(50):  # warm the connections
        await catalog.list_products(read, after=picker.choice(skus), limit=limit)
    took: list[float] = []
    cpu = time.process_time()
    for _ in range(pages):
        after = picker.choice(skus[: -limit - 1])
        started = time.perf_counter()
        products, _next = await catalog.list_products(read, after=after, limit=limit)
        took.append((time.perf_counter() - started) * 1000)
        assert len(products) == limit
    cpu_ms = (time.process_time() - cpu) * 1000 / pages
    ordered = sorted(took)
    return {
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[int(0.99 * (len(ordered) - 1))],
        "max_ms": ordered[-1],
        "cpu_ms_per_page": cpu_ms,
    }


def _line(name: str, figures: dict[str, float]) -> str:
    return f"{name:>15}: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items())


async def run(args: argparse.Namespace, cluster_url: str, server_url: str) -> None:
    skus = _skus(args.products)
    for name, url in (("cluster", cluster_url), ("one server", server_url)):
        read = connect(url)
        try:
            await read.flushall()
            await fill(read, args.partitions, skus)
            side = ReadSide(read, args.partitions)
            assert await catalog.count_products(side) == len(skus)
            print(_line(name, await measure(side, skus, args.pages, args.limit)), flush=True)
        finally:
            await read.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--partitions", type=int, default=64)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--limit", type=int, default=50)
    args = parser.parse_args()
    print(
        f"catalog pages of {args.limit} over {args.partitions} partitions, "
        f"{args.products:,} products, {args.pages:,} pages each",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with running_cluster(root / "cluster") as cluster, running_redis(root / "one") as one:
            asyncio.run(run(args, cluster.url, one.url))


if __name__ == "__main__":
    main()
