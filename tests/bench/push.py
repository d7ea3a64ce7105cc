"""Push benchmarks, measured by hand (no assertions):

    .venv/bin/python -m tests.bench.push [--rate 10] [--seconds 20] [--framing array|single]
        [--no-compression]

Starts its own Redis (append-only file on, as in development) and the stack as processes (web,
command worker, projector, process manager), 50 products, then:

  memory   web-process RSS (VmRSS) before and after 1,000 idle catalog watchers;
  latency  `--rate` RestockProducts a second for `--seconds`, to 100 and then 1,000 catalog
           watchers: receive time minus commit time, where the commit time is the ms part of
           the pushed `position` (`partition:streamid`, the Redis clock at the event's XADD;
           one machine, one clock);
  burst    100 watchers reading continuously through a 1,000-row ImportCatalog: how many
           were dropped, and how many ended without every product's stock as the read model
           has it.

Watchers run in 2 processes of their own (`python -m tests.bench.push --watch ...`), never in
the web process, with the `websockets` asyncio client (per-message deflate on, as browsers
negotiate it, unless `--no-compression`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support.api_client import Storefront, running_storefront, send, wait_for_command
from tests.support.polling import eventually

PROCESSES = 2
PRODUCTS = 50
IMPORT_ROWS = 1000


# --- the watcher process --------------------------------------------------------------------


@dataclass
class Watched:
    """What one socket saw."""

    available: dict[str, int] = field(default_factory=dict)
    closed: int | None = None


def digest(available: dict[str, int]) -> str:
    return hashlib.sha1(json.dumps(sorted(available.items())).encode()).hexdigest()


async def watch(url: str, count: int, prefix: str, compression: bool) -> None:
    """Open `count` catalog watchers; print "ready"; then answer "report" lines on stdin."""
    latencies: list[float] = []
    slots = asyncio.Semaphore(50)

    async def open_one() -> ClientConnection:
        async with slots:
            ws = await connect(
                url,
                compression="deflate" if compression else None,
                max_size=None,
                open_timeout=120,
                ping_timeout=None,
                proxy=None,
            )
            await ws.send(json.dumps({"subscribe": ["catalog"]}))
            while '"subscribed"' not in str(await ws.recv()):
                pass
            return ws

    async def read(ws: ClientConnection, seen: Watched) -> None:
        try:
            async for frame in ws:
                now = time.time() * 1000
                decoded = json.loads(frame)
                for message in decoded if isinstance(decoded, list) else [decoded]:
                    if message.get("type") != "view":
                        continue
                    key = message["key"]
                    if key.startswith(prefix):
                        seen.available[key] = message["data"]["available"]
                    position = message.get("position")
                    if position:
                        committed = int(position.partition(":")[2].partition("-")[0])
                        latencies.append(round(now - committed, 1))
        except ConnectionClosed:
            pass
        seen.closed = ws.close_code if ws.close_code is not None else 1006

    sockets = await asyncio.gather(*(open_one() for _ in range(count)))
    seen = [Watched() for _ in sockets]
    readers = [asyncio.create_task(read(ws, s)) for ws, s in zip(sockets, seen, strict=True)]
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "report":
        report = {
            "latencies": latencies,
            "closed": [s.closed for s in seen if s.closed is not None],
            "digests": [digest(s.available) for s in seen],
        }
        latencies = []
        print(json.dumps(report), flush=True)
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


# --- the driver -----------------------------------------------------------------------------


class Watchers:
    """`total` watchers spread over PROCESSES processes."""

    def __init__(self, url: str, total: int, prefix: str, compression: bool) -> None:
        share = total // PROCESSES
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.bench.push", "--watch", url, str(share), prefix]
                + ([] if compression else ["--no-compression"]),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(PROCESSES)
        ]
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip() == "ready", f"a watcher process failed: {line!r}"

    def report(self) -> dict[str, list[Any]]:
        merged: dict[str, list[Any]] = {"latencies": [], "closed": [], "digests": []}
        for proc in self.procs:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write("report\n")
            proc.stdin.flush()
        for proc in self.procs:
            assert proc.stdout is not None
            for name, values in json.loads(proc.stdout.readline()).items():
                merged[name].extend(values)
        return merged

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(proc.pid) for proc in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write("stop\n")
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextlib.contextmanager
def watchers(url: str, total: int, prefix: str, compression: bool) -> Iterator[Watchers]:
    made = Watchers(url, total, prefix, compression)
    try:
        yield made
    finally:
        made.stop()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def rows(prefix: str, count: int) -> list[dict[str, Any]]:
    return [
        {"sku": f"{prefix}-{n:04d}", "name": f"Item {n}", "price_cents": 100, "initial_stock": n}
        for n in range(count)
    ]


async def import_rows(storefront: Storefront, products: list[dict[str, Any]]) -> float:
    """ImportCatalog; the seconds it took to succeed."""
    started = time.monotonic()
    async with storefront.client("admin") as admin:
        response = await send(admin, {"type": "ImportCatalog", "products": products})
        assert response.status_code == 202, response.text
        final = await wait_for_command(admin, response.json()["command_id"])
    assert final["status"] == "succeeded", final
    return time.monotonic() - started


async def read_model(storefront: Storefront, prefix: str, count: int) -> dict[str, int]:
    async def probe() -> dict[str, int]:
        async with storefront.client() as anyone:
            response = await anyone.get("/api/products", params={"after": prefix, "limit": 1000})
        return {p["sku"]: p["available"] for p in response.json() if p["sku"].startswith(prefix)}

    return await eventually(probe, until=lambda found: len(found) == count, timeout=120)


async def restock_paced(
    storefront: Storefront, skus: list[str], rate: float, seconds: float
) -> int:
    started = time.monotonic()
    total = int(rate * seconds)
    async with storefront.client("admin") as admin:
        for n in range(total):
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            restock = {"type": "RestockProduct", "sku": skus[n % len(skus)], "quantity": 1}
            response = await send(admin, restock)
            assert response.status_code == 200, response.text
    return total


def latency_row(label: str, report: dict[str, list[Any]], changes: int, cpu: float) -> str:
    values = report["latencies"]
    watchers = len(report["digests"])
    return (
        f"| {label} | {watchers} | {changes} | {len(values)} "
        f"| {statistics.median(values):.1f} ms | {percentile(values, 0.99):.1f} ms "
        f"| {max(values):.1f} ms | {len(report['closed'])} | {cpu:.1f} s |"
    )


async def bench(storefront: Storefront, args: argparse.Namespace) -> None:
    web = storefront.web.popen.pid
    query = "?batch=1" if args.framing == "array" else ""
    url = f"{storefront.ws_url}/api/ws{query}"
    compression = not args.no_compression
    products = rows("PUSH", PRODUCTS)
    await import_rows(storefront, products)
    await read_model(storefront, "PUSH", PRODUCTS)
    skus = [p["sku"] for p in products]

    print(f"framing: {args.framing}; per-message deflate: {'on' if compression else 'off'}")
    before = rss_mib(web)
    with watchers(url, 1000, "PUSH", compression):
        await asyncio.sleep(2)
        after = rss_mib(web)
    print(f"\nweb RSS: {before:.1f} MiB, with 1,000 idle watchers {after:.1f} MiB")
    print(f"  → {after - before:.1f} MiB per 1,000 idle watchers\n")

    print(
        "| pace | watchers | restocks | messages | p50 | p99 | max | dropped | web CPU"
        " | watchers' CPU |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for total in (100, 1000):
        with watchers(url, total, "PUSH", compression) as group:
            group.report()  # forget what came before the run
            cpu, clients = cpu_seconds(web), group.cpu_seconds()
            changes = await restock_paced(storefront, skus, args.rate, args.seconds)
            await asyncio.sleep(2)
            report = group.report()
            cpu, clients = cpu_seconds(web) - cpu, group.cpu_seconds() - clients
        row = latency_row(f"{args.rate:g}/s restocks", report, changes, cpu)
        print(f"{row} {clients:.1f} s |", flush=True)

    prefix = f"BURST{int(time.time())}"
    with watchers(url, 100, prefix, compression) as group:
        cpu = cpu_seconds(web)
        took = await import_rows(storefront, rows(prefix, IMPORT_ROWS))
        expected = digest(await read_model(storefront, prefix, IMPORT_ROWS))
        deadline = time.monotonic() + 60
        while True:
            report = group.report()
            stale = [d for d in report["digests"] if d != expected]
            if not stale or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        cpu = cpu_seconds(web) - cpu
    print(
        f"\nburst: {IMPORT_ROWS}-row ImportCatalog ({took:.1f} s) to 100 watchers reading:"
        f" {len(report['closed'])} dropped, {len(stale)} without the final state;"
        f" web CPU {cpu:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--framing", choices=("array", "single"), default="array")
    parser.add_argument("--no-compression", action="store_true")
    parser.add_argument("--watch", nargs=3, metavar=("URL", "COUNT", "PREFIX"))
    args = parser.parse_args()
    if args.watch:
        url, count, prefix = args.watch
        asyncio.run(watch(url, int(count), prefix, not args.no_compression))
        return
    with (
        tempfile.TemporaryDirectory() as scratch,
        running_storefront(
            Path(scratch),
            workers=("commands", "projector", "process"),
            appendonly=True,
            WS_MAX_PER_CLIENT="5000",
        ) as storefront,
    ):
        asyncio.run(bench(storefront, args))


if __name__ == "__main__":
    main()
