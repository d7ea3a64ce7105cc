"""Archive throughput, measured by hand (no assertions):

    .venv/bin/python -m tests.bench.archive [--events 200000] [--products 1000]
        [--segment 50000] [--s3]

Starts its own Redis (no append-only file), writes `--products` CreateProducts and then
restocks and renames until the streams hold `--events` product events (through the real
bus, as tests.bench.rebuild does), then archives every partition in this one process — read
the acknowledged entries, write the Parquet segments (zstd) and the manifests, trim the
streams — and reports events/s over wall time and per CPU second of this process, the
archive's bytes per event and Redis memory before and after the trim. `--s3` writes to
moto's S3 server (started here) instead of a local directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from app.config import load_settings
from app.kernel import keys
from app.kernel.archive.partition import PartitionArchive
from app.kernel.archive.store import ArchiveStore, open_store
from app.kernel.server_info import memory
from app.services import build_services
from tests.bench.rebuild import write_events
from tests.support.redis_server import running_redis
from tests.support.s3_server import running_s3


@contextlib.contextmanager
def archive_store(args: argparse.Namespace, tmp: Path) -> Iterator[ArchiveStore]:
    if not args.s3:
        yield open_store(str(tmp / "archive"))
        return
    with running_s3() as s3:
        s3.create_bucket("bench")
        yield open_store("s3://bench/events", s3.env())


async def bench(args: argparse.Namespace, url: str, store: ArchiveStore) -> None:
    settings = load_settings(
        {"REDIS_URL": url, "APP_ENV": "test", "PARTITIONS": "4", "LOG_LEVEL": "WARNING"}
    )
    services = build_services(settings)
    try:
        await write_events(services, args.products, args.events)
        (before,) = await memory(services.write)
        archives = [
            PartitionArchive(
                services.write,
                store,
                partition,
                keys.events(partition),
                segment_events=args.segment,
                segment_seconds=0.0,  # every entry read is due: a backlog's worth
                retention_ms=1,
            )
            for partition in range(settings.partitions)
        ]
        wall, cpu = time.perf_counter(), time.process_time()
        for archive in archives:
            await archive.open()
            while await archive.step(lambda: True):
                pass
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        (after,) = await memory(services.write)
        done = sum(a.manifest.entries for a in archives)
        stored = sum(s.bytes for a in archives for s in a.manifest.segments)
        segments = sum(len(a.manifest.segments) for a in archives)
        print(f"  archived {done:,} events in {segments} segments to {store.url}")
        print(f"  {wall:.2f} s = {done / wall:,.0f} events/s (wall)")
        print(f"  {cpu:.2f} CPU s in this process = {done / cpu:,.0f} events per CPU second")
        print(f"  archive: {stored / 2**20:.1f} MiB, {stored / done:.0f} bytes per event")
        print(
            f"  Redis used_memory: {before.used / 2**20:.1f} MiB before, "
            f"{after.used / 2**20:.1f} MiB after the trim"
        )
    finally:
        await services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--segment", type=int, default=50_000)
    parser.add_argument("--s3", action="store_true")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_redis(Path(tmp) / "redis") as server,
        archive_store(args, Path(tmp)) as store,
    ):
        asyncio.run(bench(args, server.url, store))


if __name__ == "__main__":
    main()
