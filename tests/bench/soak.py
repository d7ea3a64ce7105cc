"""The soak benchmark: the whole stack under a steady load for half an hour, sampled once a
minute, to see whether anything grows that should not.

    .venv/bin/python -m tests.bench.soak [--minutes 30] [--rate R] [--status-ttl 600]
        [--json soak.json] [--chart docs/soak-memory.svg] [--markdown soak.md]

Starts a Redis for the write side and one for the read models, the web process, `--commands`
command workers, the process manager, projector, notifier and archiver (gateway latency 0),
with `STATUS_TTL_SECONDS=--status-ttl` (600: the product's 7 days would grow for 7 days),
`EVENT_RETENTION_SECONDS` and `INTEGRATION_RETENTION_SECONDS` of `--retention` (300) and
archive segments every `--segment-seconds` (60). Without `--rate` it first measures capacity
(`storefront loadtest`, closed loop, `--capacity-seconds`) and runs at half of it. The load is
`storefront loadtest --rate R --duration MINUTES*60 --watchers 10` (open loop, products of
its own with a million units each), and once a minute (minute 0 as it starts) it records
soak_sample.Sample: Redis memory, keys and bytes by key family, stream lengths, every
process's RSS, file descriptors and CPU, the web process's sockets, the archive on disk.
Samples go to `--json` as they are taken; at the end the chart (soak_chart) and the table of
figures (soak_report) are written.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import redis

from app.adapters.embedded_redis import free_port, port_open
from app.loadtest.report import Report
from tests.bench.commands_rps import login
from tests.bench.flash_sale import loadtest
from tests.bench.soak_chart import write_chart
from tests.bench.soak_report import Settings, SoakRun, markdown
from tests.bench.soak_sample import FamilyOf, Sample, take
from tests.support.key_families import families
from tests.support.polling import eventually_sync
from tests.support.processes import ROOT, ProcessGroup
from tests.support.redis_server import running_redis

PARTITIONS = 4
WATCHERS = 10
PRODUCTS = 20
STOCK = 1_000_000


def stack_env(args: argparse.Namespace, write_url: str, read_url: str, port: int) -> dict[str, str]:
    return {
        "REDIS_URL": write_url,
        "READ_REDIS_URL": read_url,
        "PORT": str(port),
        "APP_ENV": "development",
        "PARTITIONS": str(PARTITIONS),
        "PAYMENT_LATENCY_MS": "0",
        "STATUS_TTL_SECONDS": str(args.status_ttl),
        "EVENT_RETENTION_SECONDS": str(args.retention),
        "INTEGRATION_RETENTION_SECONDS": str(args.retention),
        "ARCHIVE_SEGMENT_SECONDS": str(args.segment_seconds),
        "LOG_LEVEL": "WARNING",
        "WS_MAX_PER_CLIENT": "5000",  # every watcher comes from this one address
    }


def start_load(base: str, root: Path, rate: float, seconds: int) -> subprocess.Popen[bytes]:
    """`storefront loadtest`, open loop, in its own process for the whole soak."""
    log = (root / "soak-loadtest.log").open("wb")
    command = [sys.executable, "-m", "app.cli", "loadtest", "--url", base, "--quiet"]
    command += ["--rate", f"{rate:g}", "--duration", str(seconds), "--shoppers", "16"]
    command += ["--watchers", str(WATCHERS), "--create-products", str(PRODUCTS)]
    command += ["--stock", str(STOCK), "--json", str(root / "soak-loadtest.json")]
    try:
        return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def summary_line(sample: Sample) -> str:
    memory = " ".join(f"{k} {v.used_memory / 2**20:.1f}" for k, v in sample.servers.items())
    rss = " ".join(f"{p.name} {p.rss / 2**20:.0f}" for p in sample.processes)
    return (
        f"minute {sample.minute:5.1f}: orders {sample.orders_placed:,}; used_memory MiB {memory}; "
        f"RSS MiB {rss}; sockets {sample.sockets}; archive {sample.archive_bytes / 2**20:.1f} "
        f"MiB in {sample.archive_segments} segments; load {sample.load_average[0]:.1f}; "
        f"scan {sample.scan_seconds:.1f} s"
    )


def soak(args: argparse.Namespace, run: SoakRun, root: Path, pids: dict[str, int]) -> None:
    base = f"http://127.0.0.1:{run.settings.port}"
    if not run.rate:
        capacity = loadtest(
            base,
            root / "capacity.json",
            "--shoppers",
            "32",
            "--duration",
            str(args.capacity_seconds),
            "--create-products",
            str(PRODUCTS),
        )
        run.capacity = capacity.orders.completed_per_second
        run.rate = round(run.capacity / 2, 1)
        print(f"capacity {run.capacity:.1f} orders/s: the soak runs at {run.rate:g}", flush=True)
    seconds = args.minutes * 60
    clients = {
        label: redis.Redis.from_url(url, decode_responses=True)
        for label, url in run.settings.redis_urls.items()
    }
    family_of = FamilyOf(families())
    load = start_load(base, root, run.rate, seconds)
    pids["loadtest"] = load.pid
    started = time.monotonic()
    try:
        for minute in range(args.minutes + 1):
            time.sleep(max(0.0, started + 60 * minute - time.monotonic()))
            since = (time.monotonic() - started) / 60
            sample = take(since, clients, family_of, pids, base, root / "archive", PARTITIONS)
            run.samples.append(sample)
            print(summary_line(sample), flush=True)
            Path(args.json).write_bytes(msgspec.json.format(msgspec.json.encode(run)))
        load.wait(timeout=seconds + 600)
    finally:
        if load.poll() is None:
            load.terminate()
            load.wait(timeout=30)
        for client in clients.values():
            client.close()
    report = root / "soak-loadtest.json"
    print((root / "soak-loadtest.log").read_text(errors="replace")[-3000:])
    if report.exists():
        run.load = msgspec.json.decode(report.read_bytes(), type=Report)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--rate", type=float, default=0.0, help="orders/s (0: half capacity)")
    parser.add_argument("--capacity-seconds", type=int, default=20)
    parser.add_argument("--status-ttl", type=int, default=600, help="STATUS_TTL_SECONDS")
    parser.add_argument("--retention", type=int, default=300, help="events' and integration's")
    parser.add_argument("--segment-seconds", type=float, default=60.0)
    parser.add_argument("--commands", type=int, default=1, help="command worker processes")
    parser.add_argument("--json", default="soak.json", metavar="PATH")
    parser.add_argument("--chart", default="", metavar="PATH", help="the SVG chart")
    parser.add_argument("--markdown", default="", metavar="PATH", help="the table of figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        root = Path(tmp)
        with running_redis(root / "write") as write, running_redis(root / "read") as read:
            port = free_port()
            env = stack_env(args, write.url, read.url, port)
            settings = Settings.of(args, env, {"write": write.url, "read": read.url})
            run = SoakRun(settings=settings, rate=args.rate)
            group = ProcessGroup(root, env)
            try:
                web = group.start("web", "app.web.serve")
                for _ in range(args.commands):
                    group.start("commands", "workers.commands")
                for kind in ("process", "projector", "notifier", "archiver"):
                    group.start(kind, f"workers.{kind}")
                pids = {"redis write": write.process.pid, "redis read": read.process.pid}
                pids["web"] = web.popen.pid
                for proc in group.procs[1:]:
                    pids[proc.name if proc.name not in pids else f"{proc.name} {proc.log.stem}"] = (
                        proc.popen.pid
                    )
                eventually_sync(lambda: port_open(port), timeout=60, message="web up")
                eventually_sync(
                    lambda: _signed_in(f"http://127.0.0.1:{port}"), timeout=60, message="seeded"
                )
                soak(args, run, root, pids)
                dead = [p.name for p in group.procs if not p.alive()]
                if dead:
                    print(f"processes that died during the soak: {dead}\n{group.logs()}")
            except BaseException:
                print(group.logs())
                raise
            finally:
                group.stop_all()
    Path(args.json).write_bytes(msgspec.json.format(msgspec.json.encode(run)))
    print(f"samples written to {args.json}")
    if args.chart:
        write_chart(run, Path(args.chart))
        print(f"chart written to {args.chart}")
    table = markdown(run)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table)
    return 0


def _signed_in(base: str) -> bool:
    try:
        login(base)
    except OSError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
