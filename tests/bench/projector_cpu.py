"""The projector's CPU per order, one group per read model against the one pass, same events:

    .venv/bin/python -m tests.bench.projector_cpu [--orders 400] [--batch 3] [--rounds 2]
        [--profile]

Starts its own Redis, places `--orders` two-line orders through the real command and
fulfilment loops (in this process), then projects the same events again and again from
nothing, alternating the two ways (`--rounds` each): every read model the projector runs,
either as one consumer group per read model (`ProjectionHandler` each, as before the pass) or
as the one pass per partition (`projector_passes`). Batches hold at most `--batch` entries:
at a paced 50 orders/s a batch holds one to three, and the cost per batch is what the pass
cuts. Reports the CPU of this process (the projector's part) and of Redis per order.
Measured with everything else idle: the machine's load average is printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import tempfile
import time
from pathlib import Path

from app.config import load_settings
from app.kernel import keys
from app.kernel.consumer import PartitionedConsumer, PartitionHandler
from app.kernel.leases import Leases
from app.kernel.messages import Actor
from app.kernel.pass_groups import pass_group
from app.kernel.projection import ProjectionHandler, group_name
from app.kernel.projector_pass import projector_passes
from app.projections.registry import PROJECTOR, build
from app.services import Services, build_services
from tests.integration.conftest import running_workers
from tests.support.orders_helpers import (
    create_products,
    customer,
    place_order,
    wait_all_final,
    wait_idle,
)
from tests.support.redis_server import running_redis

ADMIN = Actor("admin", frozenset({"admin"}))
SKUS = [f"CPU-{n:03d}" for n in range(50)]


async def _alone() -> int:
    return 1


async def _place_orders(services: Services, orders: int) -> None:
    await create_products(services, ADMIN, {sku: 1_000_000 for sku in SKUS})
    shopper = customer("shopper")
    ids = []
    for n in range(orders):
        lines = {SKUS[n % len(SKUS)]: 1, SKUS[(n * 7 + 1) % len(SKUS)]: 2}
        ids.append(await place_order(services, shopper, lines))
    await wait_all_final(services, ids, within=600)


async def _redis_cpu(services: Services) -> float:
    info = await services.write.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def _forget(services: Services) -> None:
    """Every read model and every projector group gone: the next run starts from nothing."""
    async for key in services.read.scan_iter(match="rm:*", count=1000):
        await services.read.delete(key)
    for partition in range(services.settings.partitions):
        for stream in (keys.events(partition), keys.journal(partition)):
            for group in await services.write.xinfo_groups(stream):
                name = str(group["name"])
                if name.startswith(("projection.", "projector.")):
                    await services.write.xgroup_destroy(stream, name)


async def _project(
    services: Services, way: str, batch: int, profiled: bool = False
) -> tuple[float, float, float]:
    """(process CPU s, Redis CPU s, wall s) to project every event once, `way`."""
    projections = build(PROJECTOR, services.settings)
    handlers: list[PartitionHandler]
    if way == "pass":
        handlers = list(projector_passes(projections, services.read, services.write))
        groups = [(p.stream, pass_group(p.stream(0))) for p in projections]
        groups = list({g[1]: g for g in groups}.values())
    else:
        handlers = [ProjectionHandler(p, services.read) for p in projections]
        groups = [(p.stream, group_name(p.name)) for p in projections]
    consumer = PartitionedConsumer(
        services.write,
        handlers,
        services.settings.partitions,
        Leases(services.write, f"bench-{way}"),
        _alone,
        block_ms=100,
        batch=batch,
    )
    stop = asyncio.Event()
    profile = cProfile.Profile() if profiled else None
    if profile is not None:
        profile.enable()
    redis_before, cpu, wall = await _redis_cpu(services), time.process_time(), time.perf_counter()
    task = asyncio.create_task(consumer.run(stop, tick=0.2))
    await wait_idle(services, groups, within=900)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    redis = await _redis_cpu(services) - redis_before
    if profile is not None:
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    stop.set()
    await task
    return cpu, redis, wall


async def bench(args: argparse.Namespace, url: str) -> None:
    settings = load_settings(
        {"REDIS_URL": url, "APP_ENV": "test", "PARTITIONS": "4", "LOG_LEVEL": "WARNING"}
    )
    services = build_services(settings)
    try:
        async with running_workers(settings, ("commands", "process")):
            await _place_orders(services, args.orders)
        print(f"{args.orders} orders placed; load average {os.getloadavg()[0]:.1f}")
        for round_ in range(args.rounds):
            for way in ("groups", "pass"):
                await _forget(services)
                cpu, redis, wall = await _project(
                    services, way, args.batch, args.profile and way == "pass"
                )
                print(
                    f"round {round_ + 1} {way:>6}: projector {1000 * cpu / args.orders:.2f} ms "
                    f"CPU per order, Redis {1000 * redis / args.orders:.2f} ms, "
                    f"{wall:.1f} s wall, load average {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    finally:
        await services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--batch", type=int, default=3, help="entries per batch at most")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="cProfile the pass (self time)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_redis(Path(tmp)) as server:
        asyncio.run(bench(args, server.url))


if __name__ == "__main__":
    main()
