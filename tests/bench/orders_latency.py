"""Order fulfilment latency and throughput, measured by hand (no assertions):

    .venv/bin/python -m tests.bench.orders_latency [--orders 300] [--rate 40]
        [--commands 2] [--via http|intake]

Starts its own Redis (append-only file on, as in development) and the real stack as processes
(web, `--commands` command workers, one process manager, projector, notifier) with
PAYMENT_LATENCY_MS=0 and no gateway failures, over 10 products with stock to spare. Then:

  paced  `--orders` orders at `--rate` per second: accepted → succeeded p50 / p90 / p99
         with the stack not saturated (what one shopper waits);
  burst  `--orders` orders submitted all at once (32 in flight): the same percentiles, and
         the sustained rate = orders / (last completed_at - first accepted_at).

Times come from the command statuses (accepted_at / completed_at, epoch seconds, ms
resolution) the system records; `--via http` sends PlaceOrder as a client would (POST
/api/commands, 2 customers), `--via intake` calls CommandIntake.submit in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx

from app.adapters.embedded_redis import free_port
from app.config import load_settings
from app.kernel import keys
from app.kernel.heartbeat import live_heartbeats
from app.kernel.messages import Actor
from app.kernel.partitions import partition_of_command
from app.services import Services, build_services
from tests.support.api_client import base_env
from tests.support.orders_helpers import (
    APPROVED_CARD,
    create_products,
    customer,
    place_order,
    wait_all_final,
)
from tests.support.polling import eventually
from tests.support.processes import ProcessGroup
from tests.support.redis_server import running_redis

ADMIN = Actor("admin", frozenset({"admin"}))
PRODUCTS = {f"BENCH-{n:02d}": 1_000_000 for n in range(10)}
CUSTOMERS = ("alice", "bob")
IN_FLIGHT = 32

Submit = Callable[[int], Awaitable[str]]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def timings(services: Services, command_ids: list[str]) -> list[tuple[float, float]]:
    """(accepted_at, completed_at) of each command, as its status records them."""
    async with services.write.pipeline(transaction=False) as pipe:
        for command_id in command_ids:
            partition = partition_of_command(command_id, services.settings.partitions)
            assert partition is not None
            pipe.hmget(keys.command_status(partition, command_id), "accepted_at", "completed_at")
        rows = await pipe.execute()
    return [(float(accepted), float(completed)) for accepted, completed in rows]


async def step_gaps(services: Services, command_ids: list[str]) -> dict[str, list[float]]:
    """Milliseconds between consecutive steps ("accepted→processing", ...) of each command."""
    gaps: dict[str, list[float]] = {}
    for command_id in command_ids:
        partition = partition_of_command(command_id, services.settings.partitions)
        assert partition is not None
        view = await services.statuses.get(partition, command_id)
        assert view is not None
        steps = [(s.name, datetime.fromisoformat(s.at or "")) for s in view.view.steps]
        for (before, at), (after, then) in itertools.pairwise(steps):
            gaps.setdefault(f"{before}→{after}", []).append((then - at).total_seconds() * 1000)
    return gaps


async def run(
    services: Services, submit: Submit, orders: int, rate: float
) -> tuple[list[float], float, float, dict[str, list[float]]]:
    """Submit `orders` (paced at `rate`/s, or `IN_FLIGHT` at a time if rate is 0), wait until
    all are final: latencies in ms, the sustained rate, and the submission rate."""
    slots = asyncio.Semaphore(IN_FLIGHT)
    started = time.monotonic()

    async def one(n: int) -> str:
        if rate:
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        async with slots:
            return await submit(n)

    command_ids = list(await asyncio.gather(*(one(n) for n in range(orders))))
    submitted = orders / (time.monotonic() - started)
    outcome = await wait_all_final(services, command_ids, within=600)
    failed = [c for c, status in outcome.items() if status != "succeeded"]
    assert not failed, f"{len(failed)} orders failed, e.g. {failed[:3]}"
    found = await timings(services, command_ids)
    latencies = [(done - accepted) * 1000 for accepted, done in found]
    span = max(done for _, done in found) - min(accepted for accepted, _ in found)
    return latencies, orders / span, submitted, await step_gaps(services, command_ids)


def no_headers(_n: int) -> dict[str, str]:
    return {}


async def http_submitter(
    base_url: str,
    stack: list[httpx.AsyncClient],
    headers: Callable[[int], dict[str, str]] = no_headers,
) -> Submit:
    """PlaceOrder as a client sends it, order `n` with `headers(n)` (say, a traceparent)."""
    clients = []
    for name in CUSTOMERS:
        client = httpx.AsyncClient(base_url=base_url, timeout=30)
        stack.append(client)
        reply = await client.post(
            "/api/session", json={"username": name, "password": f"{name}-pass"}
        )
        reply.raise_for_status()
        client.headers["X-CSRF-Token"] = reply.json()["csrf_token"]
        clients.append(client)

    async def submit(n: int) -> str:
        sku = f"BENCH-{n % len(PRODUCTS):02d}"
        reply = await clients[n % len(clients)].post(
            "/api/commands",
            json={
                "type": "PlaceOrder",
                "lines": [{"sku": sku, "quantity": 1}],
                "card_number": APPROVED_CARD,
            },
            headers=headers(n),
        )
        assert reply.status_code == 202, reply.text
        command_id: str = reply.json()["command_id"]
        return command_id

    return submit


def intake_submitter(services: Services) -> Submit:
    actors = [customer(name) for name in CUSTOMERS]

    async def submit(n: int) -> str:
        sku = f"BENCH-{n % len(PRODUCTS):02d}"
        return await place_order(services, actors[n % len(actors)], {sku: 1})

    return submit


def report(
    label: str,
    latencies: list[float],
    sustained: float,
    submitted: float,
    gaps: dict[str, list[float]],
) -> None:
    print(
        f"{label:<7} n={len(latencies):<5} p50={statistics.median(latencies):7.1f} ms  "
        f"p90={percentile(latencies, 0.90):7.1f} ms  p99={percentile(latencies, 0.99):7.1f} ms  "
        f"max={max(latencies):7.1f} ms  completed {sustained:6.1f} orders/s  "
        f"(submitted {submitted:6.1f}/s)",
        flush=True,
    )
    for transition, values in gaps.items():
        print(
            f"        {transition:<35} p50={statistics.median(values):7.1f} ms  "
            f"p99={percentile(values, 0.99):7.1f} ms"
        )


async def measure(args: argparse.Namespace, redis_url: str, port: int) -> None:
    settings = load_settings({"REDIS_URL": redis_url, "APP_ENV": "test", "PARTITIONS": "4"})
    services = build_services(settings)
    clients: list[httpx.AsyncClient] = []
    try:
        await eventually(
            lambda: live_heartbeats(services.write),
            until=lambda beats: len(beats) >= 4 + args.commands,
            timeout=60,
            message="every process heartbeating",
        )
        await create_products(services, ADMIN, PRODUCTS, price_cents=500)
        if args.via == "http":
            submit = await http_submitter(f"http://127.0.0.1:{port}", clients)
        else:
            submit = intake_submitter(services)
        await run(services, submit, 30, 0)  # warm up: connections, scripts, caches
        print(
            f"stack: web + {args.commands} command worker(s) + process + projector + "
            f"notifier, PAYMENT_LATENCY_MS=0, via {args.via}, {os.cpu_count()} CPUs"
        )
        report(f"paced {args.rate:g}/s", *await run(services, submit, args.orders, args.rate))
        report("burst", *await run(services, submit, args.orders, 0))
    finally:
        for client in clients:
            await client.aclose()
        await services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--rate", type=float, default=40.0, help="paced run, orders/s")
    parser.add_argument("--commands", type=int, default=2, help="command worker processes")
    parser.add_argument("--via", choices=("http", "intake"), default="http")
    args = parser.parse_args()
    with orders_stack(args.commands) as (redis_url, port):
        asyncio.run(measure(args, redis_url, port))


@contextmanager
def orders_stack(commands: int) -> Iterator[tuple[str, int]]:
    """Redis (append-only) and the stack as processes: web, `commands` command workers, one
    process manager, projector and notifier; (the Redis URL, the web's port). Their logs are
    printed if the measurement fails."""
    with tempfile.TemporaryDirectory(prefix="orders-bench-") as tmp:
        root = Path(tmp)
        with running_redis(root / "redis", appendonly=True) as redis_server:
            port = free_port()
            group = ProcessGroup(root, base_env(redis_server.url, PORT=str(port)))
            try:
                group.start("web", "app.web.serve")
                for _ in range(commands):
                    group.start("commands", "workers.commands")
                for kind in ("process", "projector", "notifier"):
                    group.start(kind, f"workers.{kind}")
                yield redis_server.url, port
            except BaseException:
                print(group.logs())
                raise
            finally:
                group.stop_all()


if __name__ == "__main__":
    main()
