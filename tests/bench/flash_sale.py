"""The flash-sale benchmark: `storefront loadtest` beside its baselines, all in one run.

    python -m tests.bench.flash_sale [--seconds 10] [--commands 2] [--watchers 100]
        [--celery-tasks 2000] [--markdown PATH]

Needs `pip install -e '.[dev,bench]'` (Celery) and wrk (`apt-get install -y wrk`).
Starts its own Redis (append-only file, appendfsync always), the web process, `--commands`
command workers, the process manager, projector and notifier (PAYMENT_LATENCY_MS=0, no
gateway failures), a bare Starlette endpoint served the same way, and then measures, in turn:

  bare      wrk against the bare endpoint (POST, reads the body, constant JSON);
  ceiling   `storefront loadtest --ceiling` against the same endpoint (1 and 2 processes):
            the load client's own limit;
  accept    wrk: async RestockProduct (`Prefer: respond-async`) over 200 products, and the
            time until the catalog read model shows every accepted restock (end to end);
  celery    Celery's empty task round trip, Redis broker and result backend on this machine
            (its own Redis, no append-only file: Celery's usual setup);
  orders    loadtest, closed loop, 32 shoppers: full orders/s; Redis memory per order;
  paced     loadtest, open loop at 50 orders/s: PlaceOrder latency;
  push      the same with `--watchers` catalog watchers: push latency;
  import    `--watchers` watchers reading while a 1,000-row ImportCatalog runs;
  idle      1,000 idle watchers: the web process's RSS growth.

Then it prints the issue's Targets table (and writes it as markdown with `--markdown`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import msgspec
import redis

from app.adapters.embedded_redis import free_port, port_open
from app.loadtest.report import Report
from tests.bench.commands_rps import create_products, login, wrk, wrk_script
from tests.support.polling import eventually_sync
from tests.support.processes import ROOT, ProcessGroup
from tests.support.redis_server import running_redis

T = TypeVar("T")
CELERY_WARMUP = 100
IMPORT_ROWS = 1000
PACED_RATE = 50
TIMES = "\u00d7"  # the multiplication sign of the table


class Figures(msgspec.Struct, kw_only=True):
    """Everything one run measured (req/s, tasks/s, orders/s, ms, bytes)."""

    date: str
    cpus: int
    seconds: int
    bare_rps: float = 0.0
    ceiling_rps: dict[str, float] = {}
    async_accept_rps: float = 0.0
    async_accepted: int = 0
    commands_projected_per_s: float = 0.0
    celery_tasks_per_s: float = 0.0
    orders: Report | None = None
    paced: Report | None = None
    pushed: Report | None = None
    burst: Report | None = None
    idle_watchers: int = 0
    web_rss_growth_bytes: int = 0
    redis_per_order: MemoryPerOrder | None = None
    cpu_ms_per_order: dict[str, float] = {}
    """CPU time each process kind spent per completed order (the orders run), in ms."""


# --- measurements --------------------------------------------------------------------------


def loadtest(url: str, out: Path, *args: str) -> Report:
    """Run `storefront loadtest` as a user would (its own process); its table goes to stdout."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "loadtest",
            "--url",
            url,
            "--json",
            str(out),
            "--quiet",
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(run.stdout, flush=True)
    if run.returncode != 0:
        raise RuntimeError(f"loadtest {' '.join(args)} failed:\n{run.stderr}")
    return msgspec.json.decode(out.read_bytes(), type=Report)


def catalog_available(base: str, prefix: str) -> int:
    """Sum of `available` over the products whose sku starts with `prefix` (all pages)."""
    total, url = 0, f"{base}/api/products?limit=500"
    while url:
        with urllib.request.urlopen(url, timeout=30) as reply:
            products = msgspec.json.decode(reply.read())
            following = re.search(r"<([^>]+)>;\s*rel=\"next\"", reply.headers.get("Link") or "")
        total += sum(p["available"] for p in products if p["sku"].startswith(prefix))
        url = f"{base}{following.group(1)}" if following else ""
    return total


def accept_and_project(
    base: str, root: Path, seconds: int, connections: int
) -> tuple[float, int, float]:
    """wrk: async RestockProduct; then wait for the read model. (req/s, accepted, projected/s)"""
    cookie, csrf = login(base)
    create_products(base, cookie, csrf)
    script = wrk_script(
        root / "accept.lua", cookie, csrf, 'wrk.headers["Prefer"] = "respond-async"'
    )
    before = catalog_available(base, "BENCH-")
    started = time.monotonic()
    rps, out = wrk(f"{base}/api/commands", script, seconds, connections)
    accepted = answered_2xx(out)
    eventually_sync(
        lambda: catalog_available(base, "BENCH-"),
        until=lambda available: available >= before + accepted,
        timeout=600,
        interval=0.05,
        message="every accepted restock in the catalog",
    )
    return rps, accepted, accepted / (time.monotonic() - started)


def answered_2xx(wrk_output: str) -> int:
    """Requests wrk saw answered 2xx (its Lua `done` cannot see per-thread status counts)."""
    total = re.search(r"(\d+) requests in", wrk_output)
    refused = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", wrk_output)
    return (int(total.group(1)) if total else 0) - (int(refused.group(1)) if refused else 0)


def celery_round_trip(redis_url: str, logs: Path, tasks: int) -> float:
    """Empty tasks per second, from the first send until every result is back."""
    os.environ["CELERY_BROKER_URL"] = redis_url
    from celery.result import ResultSet

    from tests.bench.celery_noop import app, noop

    group = ProcessGroup(logs, {"CELERY_BROKER_URL": redis_url})
    try:
        group.start(
            "celery",
            "celery",
            "-A",
            "tests.bench.celery_noop",
            "worker",
            "--loglevel=WARNING",
            f"--concurrency={os.cpu_count() or 2}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        )
        eventually_sync(lambda: app.control.ping(timeout=0.5), timeout=60, message="celery up")
        ResultSet([noop.delay() for _ in range(CELERY_WARMUP)]).join_native(timeout=120)
        started = time.monotonic()
        ResultSet([noop.delay() for _ in range(tasks)]).join_native(timeout=600)
        return tasks / (time.monotonic() - started)
    finally:
        group.stop_all()
        app.close()


class RedisMemory:
    """Bytes in Redis by kind of key: MEMORY USAGE of every key, and INFO's used_memory,
    summed over the servers (the write side and the read models)."""

    def __init__(self, *urls: str) -> None:
        self.clients = [redis.Redis.from_url(url) for url in urls]

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def snapshot(self) -> MemorySnapshot:
        snapshot = MemorySnapshot(used=0)
        for client in self.clients:
            self._add(client, snapshot)
        return snapshot

    def _add(self, client: redis.Redis, snapshot: MemorySnapshot) -> None:
        snapshot.used += int(client.info("memory")["used_memory"])
        names = list(client.scan_iter(count=1000))
        for start in range(0, len(names), 1000):
            chunk = names[start : start + 1000]
            pipe = client.pipeline(transaction=False)
            for name in chunk:
                pipe.type(name)
                pipe.pttl(name)
                pipe.memory_usage(name, samples=0)
            replies = pipe.execute()
            for i in range(len(chunk)):
                kind, ttl, size = replies[3 * i : 3 * i + 3]
                if kind in (b"stream", "stream"):
                    snapshot.streams += size or 0
                elif ttl and ttl > 0:
                    snapshot.expiring += size or 0
                else:
                    snapshot.lasting += size or 0


class MemorySnapshot(msgspec.Struct):
    used: int
    streams: int = 0
    """Event streams, the command queue, journals, notices (capped): every stream key."""
    expiring: int = 0
    """Keys with a TTL: command statuses and steps, dedup and idempotency records, sessions."""
    lasting: int = 0
    """Everything else: aggregates, read models, the gateway's records."""


class MemoryPerOrder(msgspec.Struct, frozen=True):
    lasting: float
    expiring: float
    streams: float
    used: float

    @classmethod
    def between(cls, before: MemorySnapshot, after: MemorySnapshot, orders: int) -> MemoryPerOrder:
        n = max(orders, 1)
        return cls(
            (after.lasting - before.lasting) / n,
            (after.expiring - before.expiring) / n,
            (after.streams - before.streams) / n,
            (after.used - before.used) / n,
        )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_kind(pids: dict[str, list[int]]) -> dict[str, float]:
    return {kind: sum(cpu_seconds(pid) for pid in found) for kind, found in pids.items()}


def rss_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def idle_watchers(url: str, out: Path, web_pid: int, watchers: int) -> int:
    """The web process's RSS growth while `watchers` idle sockets are open: the median of
    what it holds once they are all connected (seconds 3 to 5 of the 6), not the peak while
    they connect."""
    baseline = rss_of(web_pid)
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    started = time.monotonic()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.monotonic() - started, rss_of(web_pid)))
            stop.wait(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        loadtest(url, out, "--shoppers", "0", "--watchers", str(watchers), "--duration", "6")
    finally:
        stop.set()
        sampler.join()
    held = sorted(rss for at, rss in samples if 3.0 <= at <= 5.0) or [baseline]
    return held[len(held) // 2] - baseline


# --- the table -----------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def _ratio(part: float, whole: float) -> str:
    return f"{part / whole:.2f}" if whole else "-"


def table(f: Figures) -> list[tuple[str, str, str]]:
    orders, paced, pushed, burst = f.orders, f.paced, f.pushed, f.burst
    rows = [
        (
            "Async accept vs bare Starlette, same run",
            f"{_ratio(f.async_accept_rps, f.bare_rps)} ({f.async_accept_rps:,.0f} vs "
            f"{f.bare_rps:,.0f} req/s)",
            "≥ 0.5",
        ),
        (
            "Commands end to end (accepted → projected) vs Celery's empty task, same run",
            f"{_ratio(f.commands_projected_per_s, f.celery_tasks_per_s)}{TIMES} "
            f"({f.commands_projected_per_s:,.0f} vs {f.celery_tasks_per_s:,.0f}/s)",
            f"≥ 5{TIMES}",
        ),
    ]
    if orders:
        per_s = orders.orders.completed_per_second
        rows.append(
            (
                "Full orders/s vs Celery's empty tasks/s, same run",
                f"{_ratio(per_s, f.celery_tasks_per_s)}{TIMES} ({per_s:,.0f} orders/s)",
                f"≥ 1{TIMES} (target 1,000 orders/s)",
            )
        )
    if paced:
        e2e = paced.end_to_end_ms
        rows.append(
            (
                f"PlaceOrder accepted → succeeded at {paced.mode.split(' at ')[-1]}",
                f"p50 {_ms(e2e.p50)}, p99 {_ms(e2e.p99)}",
                "p50 ≤ 5 ms, p99 ≤ 25 ms",
            )
        )
    if burst:
        rows.append(
            (
                f"Watchers dropped during a {IMPORT_ROWS:,}-row import, reading continuously",
                f"{burst.push.watchers_dropped} closes among {burst.watchers} watchers "
                "(each reopened)"
                if burst.push.watchers_dropped
                else f"0 of {burst.watchers}",
                "0",
            )
        )
    if pushed:
        rows.append(
            (
                f"Push p99, {pushed.watchers} watchers, paced ({PACED_RATE} orders/s)",
                _ms(pushed.push.latency_ms.p99),
                "≤ 25 ms with 1,000 watchers",
            )
        )
    if f.idle_watchers:
        per_thousand = f.web_rss_growth_bytes * 1000 / f.idle_watchers / 2**20
        rows.append(
            (
                "Web process RSS per 1,000 idle watchers",
                f"{per_thousand:,.1f} MiB ({f.idle_watchers:,} opened: "
                f"+{f.web_rss_growth_bytes / 2**20:,.1f} MiB)",
                "≤ 64 MiB",
            )
        )
    if f.redis_per_order:
        m = f.redis_per_order
        rows.append(
            (
                "Redis bytes per completed order, apart from its events",
                f"{m.lasting:,.0f} B after the status TTLs (+{m.expiring:,.0f} B until they "
                f"expire); streams {m.streams:,.0f} B; used_memory grew {m.used:,.0f} B",
                "≤ 4 KiB after status TTLs",
            )
        )
    return rows


def costs(f: Figures) -> list[tuple[str, str]]:
    """CPU per completed order by process kind, and what one core of each kind sustains."""
    rows = []
    for kind, ms in sorted(f.cpu_ms_per_order.items()):
        per_core = f"{1000 / ms:,.0f} orders/s per core" if ms > 0 else "—"
        rows.append((kind, f"{ms:.2f} ms CPU per order ({per_core})"))
    return rows


def baselines(f: Figures) -> list[tuple[str, str]]:
    rows = [("bare Starlette endpoint (wrk -t2 -c32)", f"{f.bare_rps:,.0f} req/s")]
    for procs, rps in f.ceiling_rps.items():
        rows.append((f"load client's ceiling on that endpoint, {procs}", f"{rps:,.0f} req/s"))
    rows.append(("async accept, RestockProduct (wrk -t2 -c32)", f"{f.async_accept_rps:,.0f} req/s"))
    rows.append(
        ("Celery empty task round trip (Redis broker)", f"{f.celery_tasks_per_s:,.0f} tasks/s")
    )
    return rows


def markdown(f: Figures) -> str:
    lines = [
        f"Measured {f.date} on a {f.cpus}-core machine with everything on it at once, "
        f"`python -m tests.bench.flash_sale --seconds {f.seconds}`:",
        "",
        "| Figure | Measured | Target |",
        "|---|---|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in table(f)),
        "",
        "| Same-run baseline | |",
        "|---|---|",
        *(f"| {a} | {b} |" for a, b in baselines(f)),
        "",
        "| CPU per completed order (the orders run) | |",
        "|---|---|",
        *(f"| {a} | {b} |" for a, b in costs(f)),
    ]
    return "\n".join(lines) + "\n"


# --- the run -------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each measurement")
    parser.add_argument("--commands", type=int, default=2, help="command worker processes")
    parser.add_argument("--watchers", type=int, default=100, help="catalog watchers (push, import)")
    parser.add_argument("--idle-watchers", type=int, default=1000)
    parser.add_argument("--celery-tasks", type=int, default=2000)
    parser.add_argument("--markdown", metavar="PATH", help="write the tables as markdown")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    try:
        import celery  # noqa: F401
    except ImportError:
        print("Celery is not installed: pip install -e '.[dev,bench]'", file=sys.stderr)
        return 2
    figures = Figures(
        date=datetime.now(UTC).date().isoformat(), cpus=os.cpu_count() or 0, seconds=args.seconds
    )
    with tempfile.TemporaryDirectory(prefix="flash-sale-") as tmp:
        root = Path(tmp)
        with (
            running_redis(root / "redis", appendonly=True) as store,
            running_redis(root / "read-redis", appendonly=True) as reads,
            running_redis(root / "celery-redis", appendonly=False) as broker,
        ):
            web_port, bare_port = free_port(), free_port()
            group = ProcessGroup(
                root,
                {
                    "REDIS_URL": store.url,
                    "READ_REDIS_URL": reads.url,  # so the two sides' costs show apart
                    "APP_ENV": "development",
                    "PARTITIONS": "4",
                    "PAYMENT_LATENCY_MS": "0",
                    "PAYMENT_FAILURE_RATE": "0",
                    "LOG_LEVEL": "WARNING",
                    "WS_MAX_PER_CLIENT": "5000",  # every watcher comes from this one address
                },
            )
            try:
                web = group.start("web", "app.web.serve", extra_env={"PORT": str(web_port)})
                for _ in range(args.commands):
                    group.start("commands", "workers.commands")
                for kind in ("process", "projector", "notifier"):
                    group.start(kind, f"workers.{kind}")
                group.start(
                    "bare",
                    "uvicorn",
                    "--factory",
                    "tests.bench.bare_app:create_app",
                    "--port",
                    str(bare_port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                )
                base, bare = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{bare_port}"
                eventually_sync(lambda: port_open(web_port) and port_open(bare_port), timeout=60)
                eventually_sync(lambda: _try(lambda: login(base)), timeout=60, message="seeded")
                pids: dict[str, list[int]] = {
                    "redis (write side)": [store.process.pid],
                    "redis (read models)": [reads.process.pid],
                }
                for proc in group.procs:
                    if proc.name != "bare":
                        pids.setdefault(proc.name, []).append(proc.popen.pid)
                measure(
                    args,
                    figures,
                    root,
                    base,
                    bare,
                    store.url,
                    reads.url,
                    broker.url,
                    web.popen.pid,
                    pids,
                )
            except BaseException:
                print(group.logs())
                raise
            finally:
                group.stop_all()
    print(f"\n{'Figure':<80} {'Measured':<60} Target")
    for name, measured, target in table(figures):
        print(f"{name:<80} {measured:<60} {target}")
    print()
    for name, value in baselines(figures):
        print(f"{name:<80} {value}")
    print()
    for name, value in costs(figures):
        print(f"{name:<22} {value}")
    if args.markdown:
        Path(args.markdown).write_text(markdown(figures))
        print(f"\nmarkdown written to {args.markdown}")
    return 0


def measure(
    args: argparse.Namespace,
    f: Figures,
    root: Path,
    base: str,
    bare: str,
    store_url: str,
    read_url: str,
    broker_url: str,
    web_pid: int,
    pids: dict[str, list[int]],
) -> None:
    seconds = str(args.seconds)
    script = root / "bare.lua"
    wrk_script(script, "", "", n=1)
    wrk(f"{bare}/api/commands", script, 2, 32)  # warm up
    f.bare_rps, _ = wrk(f"{bare}/api/commands", script, args.seconds, 32)
    print(f"bare endpoint: {f.bare_rps:,.0f} req/s", flush=True)
    for procs in (1, 2):
        ceiling = loadtest(
            bare,
            root / f"ceiling-{procs}.json",
            "--ceiling",
            "--shoppers",
            "32",
            "--duration",
            seconds,
            "--procs",
            str(procs),
        )
        f.ceiling_rps[f"{procs} process{'es' if procs > 1 else ''}"] = (
            ceiling.accepts.accepted_per_second
        )
    f.async_accept_rps, f.async_accepted, f.commands_projected_per_s = accept_and_project(
        base, root, args.seconds, 32
    )
    print(
        f"async accept: {f.async_accept_rps:,.0f} req/s; {f.async_accepted:,} accepted, "
        f"projected at {f.commands_projected_per_s:,.0f}/s",
        flush=True,
    )
    f.celery_tasks_per_s = celery_round_trip(broker_url, root, args.celery_tasks)
    print(f"celery: {f.celery_tasks_per_s:,.0f} empty tasks/s round trip", flush=True)

    memory = RedisMemory(store_url, read_url)
    before = memory.snapshot()
    cpu_before = cpu_by_kind(pids)
    f.orders = loadtest(
        base,
        root / "orders.json",
        "--shoppers",
        "32",
        "--duration",
        seconds,
        "--create-products",
        "10",
    )
    cpu_after = cpu_by_kind(pids)
    completed = max(1, f.orders.orders.completed)
    f.cpu_ms_per_order = {
        kind: round(1000 * (cpu_after[kind] - cpu_before[kind]) / completed, 3) for kind in pids
    }
    print(f"CPU ms per order: {f.cpu_ms_per_order}", flush=True)
    f.redis_per_order = MemoryPerOrder.between(before, memory.snapshot(), f.orders.orders.completed)
    memory.close()

    paced = ("--rate", str(PACED_RATE), "--duration", seconds, "--shoppers", "16")
    f.paced = loadtest(base, root / "paced.json", *paced, "--create-products", "10")
    f.pushed = loadtest(
        base,
        root / "pushed.json",
        *paced,
        "--watchers",
        str(args.watchers),
        "--create-products",
        "10",
    )
    f.burst = loadtest(
        base,
        root / "burst.json",
        "--shoppers",
        "0",
        "--watchers",
        str(args.watchers),
        "--import-rows",
        str(IMPORT_ROWS),
        "--duration",
        str(max(args.seconds, 10)),
    )
    f.idle_watchers = args.idle_watchers
    f.web_rss_growth_bytes = idle_watchers(base, root / "idle.json", web_pid, args.idle_watchers)


def _try(probe: Callable[[], T]) -> T | None:
    try:
        return probe()
    except OSError:
        return None


if __name__ == "__main__":
    sys.exit(main())
