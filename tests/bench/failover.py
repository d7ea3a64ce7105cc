"""Failover by hand (no assertions): what a killed master loses without REDIS_WAIT_REPLICAS,
and what waiting for a replica costs in orders/s.

    .venv/bin/python -m tests.bench.failover [--runs 5] [--orders 1000] [--lanes 32]
        [--wait 0|1] [--replica-lag 0.5] [--markdown failover.md]
    .venv/bin/python -m tests.bench.failover --throughput [--rounds 2] [--seconds 20]

Each run starts its own 3-master Redis Cluster with one replica per master (node timeout
1.5 s), a read-model server, and one web process and one of every worker
(tests/support/chaos_failover.py). Losses: 10 products, then `--orders` orders and a
quarter as many restocks sent through the web, `--lanes` at a time, each retried under its
Idempotency-Key until it is accepted; once 40% are accepted, the master holding the most
partitions is killed with SIGKILL, its replica promoted, and the dead node restarted as the
new replica. On one machine a replica is microseconds behind its master, so a kill loses
next to nothing; `--replica-lag S` cuts the replica off S seconds before the kill, as a
replica in another zone or on a busy host would lag (tests/support/chaos_failover.py).
Once every command is final (or 90 s have passed) and the pipeline is idle it
counts, against what the clients were told:

  acknowledged   commands a client saw accepted (202), and how many before the kill;
  lost           acknowledged commands with no trace at all (no status: never run);
  stuck          acknowledged commands not final 90 s after the kill (none: the sweeper);
  stock off      products whose stock differs from what the orders that exist add up to;
  views off      products the catalog read model shows otherwise than the write model;
  doubled        events applied twice.

Throughput: `--rounds` times (a stack without waiting, a stack with REDIS_WAIT_REPLICAS=1),
alternating, each measured by `storefront loadtest` (closed loop, 32 shoppers, `--seconds`)
on the same replicated cluster: completed orders/s of each, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgspec

from app.aggregates import ORDER, PRODUCT
from app.kernel import keys
from app.kernel.messages import FINAL_STATUSES
from app.loadtest.report import Report
from app.queries import catalog
from app.services import Services, build_services
from tests.support.chaos import Sent, burst, send, set_gate
from tests.support.chaos_failover import fail_over, partitions_of, running_failover_stack, victim
from tests.support.orders_helpers import (
    domain_events,
    order_ids,
    pipeline_groups,
    statuses,
    wait_idle,
)
from tests.support.polling import eventually

ROOT = Path(__file__).resolve().parents[2]
STOCK = 100_000
BOUND_SECONDS = 90.0


@dataclass
class Run:
    wait: int
    lag: float
    acknowledged: int = 0
    before_kill: int = 0
    lost: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    failed: int = 0
    stock_off: list[str] = field(default_factory=list)
    views_off: list[str] = field(default_factory=list)
    settled: bool = False
    """Whether the running indexes emptied (every hold settled) before counting."""
    orders_gone: list[str] = field(default_factory=list)
    """PlaceOrders with a status whose order is not in the write model (command: status)."""
    doubled: int = 0
    promoted_after: float = 0.0
    final_after: float = 0.0


async def _count(sent: list[Sent]) -> int:
    return len(sent)


async def one_run(directory: Path, wait: int, orders: int, lanes: int, lag: float) -> Run:
    run = Run(wait, lag)
    with running_failover_stack(directory, wait_replicas=wait, copies=1) as made:
        chaos, cluster = made.chaos, made.cluster
        services = build_services(chaos.settings)
        set_gate(chaos, "open")
        try:
            skus = [f"FB-{n:02d}" for n in range(10)]
            async with httpx.AsyncClient(timeout=10) as http:
                for sku in skus:
                    body = {"type": "CreateProduct", "sku": sku, "name": sku, "price_cents": 100}
                    await send(chaos, http, "admin", {**body, "initial_stock": STOCK})
            await wait_idle(services, pipeline_groups(services.settings), within=60)
            cluster.wait_in_sync()
            sent: list[Sent] = []
            sending = asyncio.create_task(
                burst(chaos, skus, sent, orders=orders, restocks=orders // 4, lanes=lanes)
            )
            await eventually(
                lambda: _count(sent),
                until=lambda n: n >= 0.4 * (orders + orders // 4),
                timeout=120,
                interval=0.01,
                message="40% of the burst accepted",
            )
            run.before_kill = len(sent)
            node = victim(cluster)
            print(f"  killing the master of partitions {partitions_of(cluster, node)}", flush=True)
            killed_at = time.monotonic()
            run.promoted_after = await asyncio.to_thread(fail_over, cluster, node, replica_lag=lag)
            await asyncio.wait_for(sending, timeout=300)
            run.acknowledged = len(sent)
            ids = [s.command_id for s in sent]
            deadline = killed_at + BOUND_SECONDS
            while time.monotonic() < deadline:
                current = await statuses(services, ids)
                # "": no status at all (lost), which no waiting brings back
                if all(not s or s in FINAL_STATUSES for s in current.values()):
                    break
                await asyncio.sleep(0.2)
            run.final_after = time.monotonic() - killed_at
            await wait_idle(services, pipeline_groups(services.settings), within=BOUND_SECONDS)
            run.settled = await settled(services, time.monotonic() + BOUND_SECONDS)
            await count(services, sent, skus, run)
            for gone in run.orders_gone[:5]:
                print(f"  order gone, PlaceOrder {gone}", flush=True)
            for command_id in run.stuck[:5]:
                order = await services.bus.load(ORDER, command_id.rpartition("-")[0])
                print(f"  stuck {command_id}: {order}", flush=True)
            for sku in skus:
                product = await services.bus.load(PRODUCT, sku)
                for held_by in list(product.reservations)[:3] if product else []:
                    order = await services.bus.load(ORDER, held_by)
                    print(f"  {sku} held by {held_by}: {order and order.status}", flush=True)
        finally:
            await services.close()
    return run


async def settled(services: Services, deadline: float) -> bool:
    """Until the sweeper settled every tracked command (holds, in-flight orders: the
    partitions' running indexes empty), or the deadline: whether it did."""
    partitions = range(services.settings.partitions)
    while True:
        async with services.write.pipeline(transaction=False) as pipe:
            for partition in partitions:
                pipe.zcard(keys.running(partition))
            left = sum(await pipe.execute())
        if not left or time.monotonic() > deadline:
            return not left
        await asyncio.sleep(0.5)


async def count(services: Services, sent: list[Sent], skus: list[str], run: Run) -> None:
    final = await statuses(services, [s.command_id for s in sent])
    run.lost = [i for i, status in final.items() if not status]  # statuses() says "" for none
    run.stuck = [i for i, status in final.items() if status and status not in FINAL_STATUSES]
    run.failed = sum(1 for status in final.values() if status == "failed")
    events = await domain_events(services.write, services.settings.partitions)
    once = Counter((e.command_id, e.type, e.aggregate_id) for e in events)
    run.doubled = sum(n - 1 for n in once.values() if n > 1)
    sold: Counter[str] = Counter()
    held: Counter[str] = Counter()
    for command_id, order_id in (await order_ids(services)).items():
        order = await services.bus.load(ORDER, order_id)
        if order is None:  # its commit lost with the master, or never run
            run.orders_gone.append(f"{command_id}: {final.get(command_id, '?') or 'no status'}")
            continue
        for line in order.lines:
            if order.status in ("confirmed", "shipped"):
                sold[line.sku] += line.quantity
            elif order.status in ("placed", "reserved", "paid"):
                held[line.sku] += line.quantity
    restocked: Counter[str] = Counter()
    for s in sent:
        if s.kind == "restock" and final.get(s.command_id) == "succeeded":
            restocked[str(s.body["sku"])] += int(s.body["quantity"])
    for sku in skus:
        product = await services.bus.load(PRODUCT, sku)
        assert product is not None
        wanted = (STOCK + restocked[sku] - sold[sku], sold[sku], held[sku])
        if (product.on_hand, product.sold, product.reserved) != wanted:
            run.stock_off.append(f"{sku}: {product.on_hand, product.sold, product.reserved}")
        shown = await catalog.get_product(services.read, sku)
        if shown is None or (shown.available, shown.sold) != (product.available, product.sold):
            run.views_off.append(f"{sku}: {shown} against {product.available, product.sold}")


def losses_table(runs: list[Run]) -> str:
    rows = [
        "| run | REDIS_WAIT_REPLICAS | replica lag | acknowledged (before the kill) | lost "
        "| stuck | failed | orders gone | stock off | views off | doubled | promoted after "
        "| all final after | holds settled |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, r in enumerate(runs, 1):
        rows.append(
            f"| {n} | {r.wait} | {r.lag:g} s | {r.acknowledged:,} ({r.before_kill:,}) "
            f"| {len(r.lost)} | {len(r.stuck)} | {r.failed} | {len(r.orders_gone)} "
            f"| {len(r.stock_off)} "
            f"| {len(r.views_off)} | {r.doubled} "
            f"| {r.promoted_after:.1f} s | {r.final_after:.1f} s | {'yes' if r.settled else 'no'} |"
        )
    total = sum(r.acknowledged for r in runs)
    rows.append(
        f"| all | | | {total:,} | {sum(len(r.lost) for r in runs)} "
        f"| {sum(len(r.stuck) for r in runs)} | {sum(r.failed for r in runs)} "
        f"| {sum(len(r.orders_gone) for r in runs)} "
        f"| {sum(len(r.stock_off) for r in runs)} | {sum(len(r.views_off) for r in runs)} "
        f"| {sum(r.doubled for r in runs)} | | | |"
    )
    return "\n".join(rows)


def loadtest(url: str, out: Path, seconds: float) -> Report:
    run = subprocess.run(
        [
            *(sys.executable, "-m", "app.cli", "loadtest", "--url", url, "--json", str(out)),
            *("--quiet", "--shoppers", "32", "--duration", str(seconds), "--create-products", "10"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if run.returncode != 0:
        raise RuntimeError(f"loadtest failed:\n{run.stderr}")
    return msgspec.json.decode(out.read_bytes(), type=Report)


def orders_per_second(directory: Path, wait: int, seconds: float) -> float:
    with running_failover_stack(directory, wait_replicas=wait, copies=1) as made:
        set_gate(made.chaos, "open")
        report = loadtest(made.chaos.webs[0][0], directory / "report.json", seconds)
    return report.orders.completed / report.seconds


def throughput(rounds: int, seconds: float) -> str:
    measured: dict[int, list[float]] = {0: [], 1: []}
    with tempfile.TemporaryDirectory() as root:
        for n in range(rounds):
            for wait in (0, 1):
                rate = orders_per_second(Path(root) / f"t{n}-{wait}", wait, seconds)
                measured[wait].append(rate)
                print(f"  round {n + 1}, REDIS_WAIT_REPLICAS={wait}: {rate:.1f} orders/s")
    without, with_wait = (sum(measured[w]) / len(measured[w]) for w in (0, 1))
    return (
        "| REDIS_WAIT_REPLICAS | orders/s, each round | mean |\n|---|---|---|\n"
        + "\n".join(
            f"| {w} | {' / '.join(f'{r:.1f}' for r in measured[w])} "
            f"| {sum(measured[w]) / len(measured[w]):.1f} |"
            for w in (0, 1)
        )
        + f"\n\nWith one replica per acknowledgement: {with_wait / without:.2f} times the orders/s "
        "of the same stack without waiting."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--lanes", type=int, default=32)
    parser.add_argument("--wait", type=int, default=0, choices=(0, 1))
    parser.add_argument("--replica-lag", type=float, default=0.0)
    parser.add_argument("--throughput", action="store_true")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    if args.throughput:
        text = throughput(args.rounds, args.seconds)
    else:
        runs = []
        with tempfile.TemporaryDirectory() as root:
            for n in range(args.runs):
                print(f"run {n + 1} of {args.runs} (REDIS_WAIT_REPLICAS={args.wait})", flush=True)
                directory = Path(root) / f"run{n}"
                lag = args.replica_lag
                run = asyncio.run(one_run(directory, args.wait, args.orders, args.lanes, lag))
                print(f"  {run}", flush=True)
                runs.append(run)
        text = losses_table(runs)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
