"""The soak benchmark's run (what `--json` holds) and its table of figures: minute 10 against
the last minute, for Redis, every key family that moved, every process and the archive."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

import msgspec

from app.loadtest.report import Report
from tests.bench.soak_sample import FamilySample, Sample
from tests.support.key_families import families

COMPARED_FROM = 10
"""The minute the last sample is compared with (the issue's target: within ±10%)."""
MOVED = 0.10
"""A family whose keys or bytes changed by more than this fraction is listed."""
CPU_SPAN = 5
"""Minutes a process's CPU share is averaged over."""
MiB = 2**20


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    minutes: int
    status_ttl: int
    retention: int
    segment_seconds: float
    commands: int
    port: int
    redis_urls: dict[str, str]
    env: dict[str, str]

    @classmethod
    def of(
        cls, args: argparse.Namespace, env: dict[str, str], redis_urls: dict[str, str]
    ) -> Settings:
        return cls(
            minutes=args.minutes,
            status_ttl=args.status_ttl,
            retention=args.retention,
            segment_seconds=args.segment_seconds,
            commands=args.commands,
            port=int(env["PORT"]),
            redis_urls=redis_urls,
            env=env,
        )


class SoakRun(msgspec.Struct, kw_only=True):
    settings: Settings
    rate: float
    """Orders a second the soak ran at."""
    capacity: float | None = None
    """Orders a second the closed-loop burst completed (None: `--rate` was given)."""
    samples: list[Sample] = []
    load: Report | None = None
    """`storefront loadtest`'s report of the soak's load."""


def at_minute(samples: list[Sample], minute: float) -> Sample:
    return min(samples, key=lambda s: abs(s.minute - minute))


def _change(before: float, after: float) -> str:
    return f"{100 * (after - before) / before:+.1f}%" if before else "-"


def _mib(value: float) -> str:
    return f"{value / MiB:,.1f} MiB"


def cpu_share(samples: list[Sample], at: Sample, name: str) -> float:
    """The process's CPU time over the CPU_SPAN minutes up to `at`, as % of one core."""
    index = samples.index(at)
    start = samples[max(0, index - CPU_SPAN)]

    def cpu(sample: Sample) -> float:
        return next((p.cpu_seconds for p in sample.processes if p.name == name), 0.0)

    minutes = at.minute - start.minute
    return 100 * (cpu(at) - cpu(start)) / (60 * minutes) if minutes else 0.0


def data_bytes(sample: Sample) -> int:
    return sum(f.bytes for f in sample.families if f.kind == "data")


def bounded_bytes(sample: Sample, leaving: frozenset[str] | set[str] = frozenset()) -> int:
    """What the families with a bound (not `data`) hold, less those named."""
    return sum(f.bytes for f in sample.families if f.kind != "data" and f.family not in leaving)


def filling_to_cap(sample: Sample) -> set[str]:
    """Capped stream families still short of their cap (they grow until it)."""
    caps = {f.pattern: f.cap for f in families() if f.kind == "cap"}
    return {
        f.family
        for f in sample.families
        if f.family in caps and f.entries is not None and f.entries < 0.9 * caps[f.family] * f.keys
    }


def beyond_data(sample: Sample) -> int:
    """used_memory of both servers less what the `data` families hold (orders, products and
    their read models: as big as what they describe)."""
    return sum(s.used_memory for s in sample.servers.values()) - data_bytes(sample)


def moved(first: Sample, last: Sample) -> list[tuple[FamilySample | None, FamilySample | None]]:
    """Families whose keys or bytes changed by more than MOVED (or that came or went)."""

    def by_name(sample: Sample) -> dict[tuple[str, str], FamilySample]:
        return {(f.server, f.family): f for f in sample.families}

    before, after = by_name(first), by_name(last)
    found = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a and b:
            grew = max(abs(b.keys - a.keys) / a.keys, abs(b.bytes - a.bytes) / max(a.bytes, 1))
            if grew <= MOVED or abs(b.bytes - a.bytes) < 16 * 1024:
                continue
        found.append((a, b))
    return sorted(found, key=lambda ab: -abs(_bytes(ab[1]) - _bytes(ab[0])))


def _bytes(family: FamilySample | None) -> int:
    return family.bytes if family else 0


def _family_row(a: FamilySample | None, b: FamilySample | None, orders: int) -> str:
    some = a or b
    assert some is not None
    entries = ""
    if some.entries is not None:
        entries = f"{a.entries if a else 0:,} → {b.entries if b else 0:,}"
    return (
        f"| {some.server} `{some.family}` | {some.kind} | {a.keys if a else 0:,} → "
        f"{b.keys if b else 0:,} | {_mib(a.bytes if a else 0)} → {_mib(b.bytes if b else 0)} | "
        f"{entries} | {(_bytes(b) - _bytes(a)) / max(orders, 1):,.0f} B |"
    )


def rows(run: SoakRun, last: Sample) -> Iterable[str]:
    samples = run.samples
    first = at_minute(samples, COMPARED_FROM)
    orders = last.orders_placed - first.orders_placed
    loads = [s.load_average[0] for s in samples]
    yield f"| figure | minute {first.minute:.0f} | minute {last.minute:.0f} | change |"
    yield "|---|---|---|---|"
    for label in first.servers:
        a, b = first.servers[label].used_memory, last.servers[label].used_memory
        yield f"| Redis `used_memory`, {label} | {_mib(a)} | {_mib(b)} | {_change(a, b)} |"
    total_a = sum(s.used_memory for s in first.servers.values())
    total_b = sum(s.used_memory for s in last.servers.values())
    yield (
        f"| Redis `used_memory`, both | {_mib(total_a)} | {_mib(total_b)} | "
        f"{_change(total_a, total_b)} |"
    )
    a, b = beyond_data(first), beyond_data(last)
    yield f"| both, less the `data` families | {_mib(a)} | {_mib(b)} | {_change(a, b)} |"
    a, b = bounded_bytes(first), bounded_bytes(last)
    yield f"| the bounded families (estimated) | {_mib(a)} | {_mib(b)} | {_change(a, b)} |"
    filling = filling_to_cap(last)
    if filling:
        a, b = bounded_bytes(first, filling), bounded_bytes(last, filling)
        names = ", ".join(f"`{name}`" for name in sorted(filling))
        yield (
            f"| the same less {names} (cap not reached) | {_mib(a)} | {_mib(b)} | {_change(a, b)} |"
        )
    a, b = data_bytes(first), data_bytes(last)
    per_order = f"{(b - a) / orders:,.0f} B per order" if orders else "-"
    yield f"| the `data` families (estimated) | {_mib(a)} | {_mib(b)} | {per_order} |"
    if orders:
        yield (
            f"| `used_memory` growth per order placed in between ({orders:,} orders) | | | "
            f"{(total_b - total_a) / orders:,.0f} B |"
        )
    for p, q in zip(first.processes, last.processes, strict=True):
        yield (
            f"| RSS, {p.name} (file descriptors) | {_mib(p.rss)} ({p.fds}) | {_mib(q.rss)} "
            f"({q.fds}) | {_change(p.rss, q.rss)} |"
        )
    for name in (p.name for p in first.processes):
        share_a, share_b = cpu_share(samples, first, name), cpu_share(samples, last, name)
        yield (
            f"| CPU, {name}: % of a core, {CPU_SPAN} minutes up to it | {share_a:.0f}% | "
            f"{share_b:.0f}% | |"
        )
    yield f"| the web process's WebSockets | {first.sockets} | {last.sockets} | |"
    yield (
        f"| the archive on disk (segments) | {_mib(first.archive_bytes)} "
        f"({first.archive_segments}) | {_mib(last.archive_bytes)} ({last.archive_segments}) | "
        f"{_change(first.archive_bytes, last.archive_bytes)} |"
    )
    yield f"| load average (1 min), over the run | | | {min(loads):.1f} to {max(loads):.1f} |"


def markdown(run: SoakRun, until: float | None = None) -> str:
    """The figures from minute COMPARED_FROM to `until` (the last sample when None)."""
    s = run.settings
    first = at_minute(run.samples, COMPARED_FROM)
    last = run.samples[-1] if until is None else at_minute(run.samples, until)
    capacity = f" (half the {run.capacity:.1f} orders/s measured first)" if run.capacity else ""
    lines = [
        f"{len(run.samples)} samples, {s.minutes} min at {run.rate:g} orders/s{capacity}; "
        f"STATUS_TTL_SECONDS={s.status_ttl}, EVENT_RETENTION_SECONDS={s.retention}, "
        f"ARCHIVE_SEGMENT_SECONDS={s.segment_seconds:g}, {s.commands} command worker(s).",
        "",
        *rows(run, last),
        "",
        f"Key families that moved by more than {MOVED:.0%} between minute {first.minute:.0f} and "
        f"{last.minute:.0f}:",
        "",
        "| family | bound | keys | bytes (estimated) | stream entries | per order placed |",
        "|---|---|---|---|---|---|",
        *(
            _family_row(a, b, last.orders_placed - first.orders_placed)
            for a, b in moved(first, last)
        ),
    ]
    if run.load:
        o, a = run.load.orders, run.load.accepts
        lines += [
            "",
            f"The load: {a.accepted:,} orders accepted ({a.errors} errors, {a.shed} shed), "
            f"{o.succeeded:,} succeeded, {o.failed:,} failed, {o.unfinished} unfinished; "
            f"client send → outcome p50 {run.load.client_latency_ms.p50 or 0:,.0f} ms, "
            f"p99 {run.load.client_latency_ms.p99 or 0:,.0f} ms; "
            f"{run.load.push.messages:,} catalog pushes to {run.load.watchers} watchers, "
            f"{run.load.push.watchers_dropped} dropped.",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description="The soak's table of figures, from its JSON")
    parser.add_argument("json", help="what `tests.bench.soak --json` wrote")
    parser.add_argument("--until", type=float, help="the minute compared (default: the last)")
    args = parser.parse_args()
    run = msgspec.json.decode(Path(args.json).read_bytes(), type=SoakRun)
    print(markdown(run, args.until))
    return 0


if __name__ == "__main__":
    sys.exit(main())
