"""One minute's sample of the soak benchmark (tests/bench/soak.py): what every part of the
stack holds — each Redis server's `used_memory`, its keys by the README's key families (with
an estimate of their bytes and, for streams, their entries), each process's RSS, open file
descriptors and CPU time, the web process's sockets and the archive on disk.

A family's bytes are estimated from `MEMORY USAGE` of up to `BYTES_SAMPLE` of its keys picked
at random (exact when it has no more), times its key count: every key of a large family every
minute would cost the stack more than the figure is worth.
"""

from __future__ import annotations

import os
import random
import re
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import msgspec
import redis

from app.projections.keys import sales_totals
from tests.bench.flash_sale import cpu_seconds, rss_of
from tests.bench.memory_per_order import shape
from tests.support.key_families import Family

BYTES_SAMPLE = 200
_ID = re.compile(r"[0-9a-f]{16,}")
_NUMBER = re.compile(r"\d+")
_WS_GAUGE = re.compile(r"^storefront_ws_connections\{[^}]*\}\s+([0-9.e+]+)$", re.MULTILINE)


class FamilySample(msgspec.Struct, frozen=True):
    server: str
    family: str
    """The README's pattern, or (a key no row names) the key with ids and numbers masked."""
    kind: str
    """Its bound: TTL, cap, retention, data, fixed, or ? (no row names it)."""
    keys: int
    bytes: int
    """Estimated: MEMORY USAGE of a sample of its keys, scaled to all of them."""
    entries: int | None
    """Streams: the sum of their lengths."""


class ServerSample(msgspec.Struct, frozen=True):
    used_memory: int
    used_memory_rss: int
    keys: int


class ProcessSample(msgspec.Struct, frozen=True):
    name: str
    pid: int
    rss: int
    fds: int
    cpu_seconds: float


class Sample(msgspec.Struct, frozen=True, kw_only=True):
    minute: float
    """Since the steady load started."""
    load_average: tuple[float, float, float]
    orders_placed: int
    """rm:sales:{pN}:totals' count, summed (the capacity burst's orders included)."""
    servers: dict[str, ServerSample]
    families: list[FamilySample]
    processes: list[ProcessSample]
    sockets: int | None
    """The web process's open WebSockets (`storefront_ws_connections` on its /metrics)."""
    archive_bytes: int
    archive_segments: int
    scan_seconds: float


class FamilyOf:
    """A key's (family, bound kind), remembered per key shape (ids and numbers masked), so a
    scan of a million keys matches each shape against the table once."""

    def __init__(self, table: list[Family]) -> None:
        self.table = table
        self.known: dict[str, tuple[str, str]] = {}

    def __call__(self, key: str) -> tuple[str, str]:
        masked = _NUMBER.sub("#", _ID.sub("@", key))
        found = self.known.get(masked)
        if found is None:
            found = self.known[masked] = shape(key, self.table)
        return found


def families_of(label: str, client: redis.Redis, family_of: FamilyOf) -> list[FamilySample]:
    members: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name in client.scan_iter(count=1000):
        members[family_of(name)].append(name)
    found = []
    for (family, kind), names in members.items():
        picked = names if len(names) <= BYTES_SAMPLE else random.sample(names, BYTES_SAMPLE)
        pipe = client.pipeline(transaction=False)
        for name in picked:
            pipe.memory_usage(name, samples=0)
        pipe.type(picked[0])
        *sizes, kind_of_key = pipe.execute()
        measured = sum(int(size or 0) for size in sizes)
        entries = None
        if kind_of_key == "stream":
            pipe = client.pipeline(transaction=False)
            for name in names:
                pipe.xlen(name)
            entries = sum(pipe.execute())
        estimate = round(measured * len(names) / len(picked))
        found.append(FamilySample(label, family, kind, len(names), estimate, entries))
    return sorted(found, key=lambda f: -f.bytes)


def process_sample(name: str, pid: int) -> ProcessSample:
    try:
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return ProcessSample(name, pid, rss_of(pid), fds, cpu_seconds(pid))
    except (FileNotFoundError, ProcessLookupError):
        return ProcessSample(name, pid, 0, 0, 0.0)  # gone: its log says why


def web_sockets(base_url: str) -> int | None:
    try:
        with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as reply:
            text = reply.read().decode()
    except OSError:
        return None
    return round(sum(float(value) for value in _WS_GAUGE.findall(text)))


def archive_on_disk(root: Path) -> tuple[int, int]:
    """(bytes of every file under the archive, Parquet segments)."""
    files = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    return sum(p.stat().st_size for p in files), sum(p.suffix == ".parquet" for p in files)


def take(
    minute: float,
    servers: dict[str, redis.Redis],
    family_of: FamilyOf,
    pids: dict[str, int],
    base_url: str,
    archive_root: Path,
    partitions: int,
) -> Sample:
    """`servers` by label ("write", "read"; the read models on "read"), clients decoding
    replies; `pids` by process name; `partitions` the stack's (the totals are per partition)."""
    started = time.monotonic()
    families: list[FamilySample] = []
    stats = {}
    for label, client in servers.items():
        memory = client.info("memory")
        stats[label] = ServerSample(
            int(memory["used_memory"]), int(memory["used_memory_rss"]), int(client.dbsize())
        )
        families += families_of(label, client, family_of)
    placed = sum(
        int(servers["read"].hget(sales_totals(partition), "orders_placed") or 0)
        for partition in range(partitions)
    )
    archive_bytes, segments = archive_on_disk(archive_root)
    return Sample(
        minute=round(minute, 2),
        load_average=os.getloadavg(),
        orders_placed=placed,
        servers=stats,
        families=families,
        processes=[process_sample(name, pid) for name, pid in pids.items()],
        sockets=web_sockets(base_url),
        archive_bytes=archive_bytes,
        archive_segments=segments,
        scan_seconds=round(time.monotonic() - started, 2),
    )
