"""Rebuild speed of a projection, measured by hand (no assertions):

    .venv/bin/python -m tests.bench.rebuild [--events 200000] [--products 1000]
        [--chunk 5000] [--projection catalog] [--archived 0.9] [--profile]

Starts its own Redis (no append-only file: the events are written once, read many times),
writes `--products` CreateProducts and then restocks and renames until the streams hold
`--events` product events (through the real bus, in batches), lets the live projector catch
up (its rate is reported too), then runs a shadow rebuild in this process and swaps it in:

  build  events/s over wall time, and per CPU second of this process (the rebuild is one
         process on one core; Redis runs on the other);
  cut    how long the projectors were paused for the catch-up, the diff and the swap.

`--archived F`: before the rebuild, the first F of each partition's events are archived
(Parquet segments in a local directory) and trimmed from the stream, so the rebuild reads the
archive, then the stream (the part past F stays in Redis).

`--profile` prints the rebuild's top functions by cumulative time (cProfile).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from app.config import load_settings
from app.domain.products import CreateProduct, RenameProduct, RestockProduct
from app.kernel import keys
from app.kernel.archive.partition import PartitionArchive
from app.kernel.consumer import PartitionedConsumer
from app.kernel.leases import Leases
from app.kernel.messages import Actor
from app.kernel.projection import ProjectionHandler, group_name
from app.kernel.rebuild import ShadowRebuild
from app.kernel.rebuild_state import RebuildState
from app.operator.rebuild import progress_line
from app.projections.registry import build
from app.services import Services, build_services
from tests.support.orders_helpers import wait_idle
from tests.support.redis_server import running_redis

ADMIN = Actor("admin", frozenset({"admin"}))
BATCH = 1000


async def write_events(services: Services, products: int, events: int) -> None:
    skus = [f"RB-{n:05d}" for n in range(products)]
    bus = services.bus
    sent = 0
    for start in range(0, products, BATCH):
        batch = [
            bus.envelope(CreateProduct(sku, f"Item {sku}", 100, 10), ADMIN, internal=True)
            for sku in skus[start : start + BATCH]
        ]
        await bus.execute_batch(batch, "queued")
        sent += len(batch)
    n = 0
    while sent < events:
        batch = []
        for _ in range(min(BATCH, events - sent)):
            sku = skus[n % products]
            command = RestockProduct(sku, 1) if n % 4 else RenameProduct(sku, f"Name {n}")
            batch.append(bus.envelope(command, ADMIN, internal=True))
            n += 1
        outcomes = await bus.execute_batch(batch, "queued")
        assert all(o.error is None for o in outcomes), outcomes[0]
        sent += len(batch)
        print(f"\r  writing events: {sent:,}/{events:,}", end="", flush=True)
    print()


async def _alone() -> int:
    return 1


async def live_catch_up(services: Services, names: tuple[str, ...]) -> float:
    """Run the live projector until idle; its rate in events/s."""
    settings = services.settings
    projections = build(names, settings)
    consumer = PartitionedConsumer(
        services.write,
        [ProjectionHandler(p, services.read) for p in projections],
        settings.partitions,
        Leases(services.write, "bench-projector"),
        _alone,
        block_ms=100,
    )
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(consumer.run(stop, tick=0.2))
    groups = [(p.stream, group_name(p.name)) for p in projections]
    await wait_idle(services, groups, within=600)
    took = time.perf_counter() - started
    stop.set()
    await task
    return took


async def archive_part(services: Services, fraction: float) -> None:
    """Archive and trim the first `fraction` of each partition's events (a consumer group
    that has read no further holds the rest in the stream)."""
    started = time.perf_counter()
    for partition in range(services.settings.partitions):
        stream = keys.events(partition)
        length = await services.write.xlen(stream)
        keep = await services.write.xrange(stream, count=max(1, int(length * fraction)))
        await services.write.xgroup_create(stream, "bench-stream", id=keep[-1][0])
        archive = PartitionArchive(
            services.write,
            services.archive_store,
            partition,
            stream,
            segment_events=50_000,
            segment_seconds=0.0,
            retention_ms=1,
        )
        await archive.open()
        while await archive.step(lambda: True):
            pass
        await services.write.xgroup_destroy(stream, "bench-stream")
        left = await services.write.xlen(stream)
        print(f"  partition {partition}: {archive.manifest.entries:,} archived, {left:,} in Redis")
    print(f"  archived in {time.perf_counter() - started:.1f} s")


async def bench(args: argparse.Namespace, url: str, tmp: Path) -> None:
    settings = load_settings(
        {
            "REDIS_URL": url,
            "APP_ENV": "test",
            "PARTITIONS": "4",
            "LOG_LEVEL": "WARNING",
            "ARCHIVE_URL": str(tmp / "archive"),
        }
    )
    services = build_services(settings)
    try:
        started = time.perf_counter()
        await write_events(services, args.products, args.events)
        print(f"  written in {time.perf_counter() - started:.1f} s")
        print("  live projector catching up…", flush=True)
        took = await live_catch_up(services, (args.projection,))
        print(f"  live projector: {args.events / took:,.0f} events/s ({took:.1f} s)")

        if args.archived:
            await archive_part(services, args.archived)
        (projection,) = build((args.projection,), settings)

        async def show(state: RebuildState) -> None:
            print("\r  " + progress_line(state), end="", flush=True)

        rebuild = ShadowRebuild(
            services.write,
            services.read,
            projection,
            settings.partitions,
            owner="bench",
            chunk=args.chunk,
            on_progress=show,
            archive=services.archive if args.archived else None,
        )
        profile = cProfile.Profile() if args.profile else None
        await rebuild.start()
        wall, cpu = time.perf_counter(), time.process_time()
        if profile:
            profile.enable()
        await rebuild.follow()
        if profile:
            profile.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        cut = time.perf_counter()
        diff = await rebuild.cut(swap=True)
        cut = time.perf_counter() - cut
        await rebuild.close()
        done = rebuild.state.done
        print()
        print(f"  build: {done:,} entries in {wall:.2f} s = {done / wall:,.0f} events/s (wall)")
        print(f"         {cpu:.2f} CPU s in this process = {done / cpu:,.0f} events per CPU second")
        print(f"  cut (catch-up, diff of {diff.live_keys:,} keys, swap): {cut:.2f} s")
        print(f"  diff: {diff.summary}")
        if profile:
            pstats.Stats(profile).sort_stats("tottime").print_stats(18)
    finally:
        await services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=5000)
    parser.add_argument("--projection", default="catalog")
    parser.add_argument("--archived", type=float, default=0.0)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_redis(Path(tmp) / "redis") as server:
        asyncio.run(bench(args, server.url, Path(tmp)))


if __name__ == "__main__":
    main()
