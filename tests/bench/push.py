"""Push benchmarks, measured by hand (no assertions):

    .venv/bin/python -m tests.bench.push [--rate 10] [--seconds 20] [--framing array|single]
        [--web-processes 1]

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
the web process; each watcher is a byte-level WebSocket reader (`LeanWatcher`), a few
microseconds a frame, so the load client is not what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvloop

from tests.support.api_client import Storefront, running_storefront, send, wait_for_command
from tests.support.polling import eventually

PROCESSES = 2
PRODUCTS = 50
IMPORT_ROWS = 1000


# --- the watcher process --------------------------------------------------------------------

POSITION = re.compile(rb'"position":"\d+:(\d+)-')


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (payload under 126 bytes; a zero mask leaves it as it is)."""
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


class LeanWatcher(asyncio.Protocol):
    """A catalog watcher at the byte level. Server frames are unmasked and unfragmented here,
    so reading costs a few microseconds a frame and the load client is not what is measured."""

    def __init__(self, host: str, target: str, latencies: list[float], prefix: str) -> None:
        loop = asyncio.get_running_loop()
        self.request = (
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.latencies = latencies
        self.prefix = prefix.encode() if prefix != "-" else None
        self.available: dict[str, int] = {}
        self.buffer = bytearray()
        self.open = False
        self.subscribed = loop.create_future()
        self.closed: int | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        assert self.transport is not None
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time() * 1000
        buffer = self.buffer
        buffer += data
        assert self.transport is not None
        if not self.open:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            assert buffer.startswith(b"HTTP/1.1 101"), bytes(buffer[:60])
            del buffer[: end + 4]
            self.open = True
            self.transport.write(client_frame(0x1, b'{"subscribe":["catalog"]}'))
        while len(buffer) >= 2:
            opcode, length, start = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if length == 126:
                length, start = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                length, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + length:
                return
            payload = bytes(buffer[start : start + length])
            del buffer[: start + length]
            if opcode == 0x1:
                self.on_text(payload, now)
            elif opcode == 0x9:
                self.transport.write(client_frame(0xA, payload))
            elif opcode == 0x8:
                self.closed = int.from_bytes(payload[:2], "big") if payload else 1005
                self.transport.close()

    def on_text(self, payload: bytes, now: float) -> None:
        for committed in POSITION.findall(payload):
            self.latencies.append(round(now - int(committed), 1))
        if not self.subscribed.done() and b'"subscribed"' in payload:
            self.subscribed.set_result(None)
        if self.prefix is not None and self.prefix in payload:
            decoded = json.loads(payload)
            for message in decoded if isinstance(decoded, list) else [decoded]:
                if message.get("type") == "view" and message["key"].startswith(prefix_of(self)):
                    self.available[message["key"]] = message["data"]["available"]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed is None:
            self.closed = 1006


def prefix_of(watcher: LeanWatcher) -> str:
    assert watcher.prefix is not None
    return watcher.prefix.decode()


async def watch(url: str, count: int, prefix: str) -> None:
    """Open `count` catalog watchers; print "ready"; then answer "report" lines on stdin."""
    latencies: list[float] = []
    address = url.removeprefix("ws://")
    host, _, target = address.partition("/")
    hostname, _, port = host.partition(":")
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(50)

    async def open_one() -> LeanWatcher:
        async with slots:
            _, watcher = await loop.create_connection(
                lambda: LeanWatcher(host, f"/{target}", latencies, prefix), hostname, int(port)
            )
            await asyncio.wait_for(watcher.subscribed, 60)
            return watcher

    watchers = await asyncio.gather(*(open_one() for _ in range(count)))
    print("ready", flush=True)
    while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "report":
        report = {
            "latencies": list(latencies),
            "closed": [w.closed for w in watchers if w.closed is not None],
            "digests": [digest(w.available) for w in watchers],
        }
        latencies.clear()
        print(json.dumps(report), flush=True)
    for watcher in watchers:
        if watcher.transport is not None:
            watcher.transport.close()


def digest(available: dict[str, int]) -> str:
    return hashlib.sha1(json.dumps(sorted(available.items())).encode()).hexdigest()


# --- the driver -----------------------------------------------------------------------------


class Watchers:
    """`total` watchers spread over PROCESSES processes."""

    def __init__(self, url: str, total: int, prefix: str) -> None:
        share = total // PROCESSES
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.bench.push", "--watch", url, str(share), prefix],
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
def watchers(url: str, total: int, prefix: str = "-") -> Iterator[Watchers]:
    made = Watchers(url, total, prefix)
    try:
        yield made
    finally:
        made.stop()


def with_children(pid: int) -> list[int]:
    """A process and its children (uvicorn's workers, with WEB_CONCURRENCY over 1)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *map(int, children)]


def rss_mib(pid: int) -> float:
    total = 0
    for each in with_children(pid):
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def cpu_seconds(pid: int) -> float:
    total = 0
    for each in with_children(pid):
        fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / 100


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
    products = rows("PUSH", PRODUCTS)
    await import_rows(storefront, products)
    await read_model(storefront, "PUSH", PRODUCTS)
    skus = [p["sku"] for p in products]

    print(f"framing: {args.framing}")
    before = rss_mib(web)
    with watchers(url, 1000):
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
        with watchers(url, total) as group:
            group.report()  # forget what came before the run
            cpu, clients = cpu_seconds(web), group.cpu_seconds()
            changes = await restock_paced(storefront, skus, args.rate, args.seconds)
            await asyncio.sleep(2)
            report = group.report()
            cpu, clients = cpu_seconds(web) - cpu, group.cpu_seconds() - clients
        row = latency_row(f"{args.rate:g}/s restocks", report, changes, cpu)
        print(f"{row} {clients:.1f} s |", flush=True)

    prefix = f"BURST{int(time.time())}"
    with watchers(url, 100, prefix) as group:
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
    parser.add_argument("--web-processes", type=int, default=1)
    parser.add_argument("--watch", nargs=3, metavar=("URL", "COUNT", "PREFIX"))
    args = parser.parse_args()
    if args.watch:
        url, count, prefix = args.watch
        uvloop.run(watch(url, int(count), prefix))
        return
    with (
        tempfile.TemporaryDirectory() as scratch,
        running_storefront(
            Path(scratch),
            workers=("commands", "projector", "process"),
            appendonly=True,
            WS_MAX_PER_CLIENT="5000",
            WEB_CONCURRENCY=str(args.web_processes),
        ) as storefront,
    ):
        asyncio.run(bench(storefront, args))


if __name__ == "__main__":
    main()
