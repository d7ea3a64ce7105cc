"""`storefront events` (every event of a partition, or of all, archive then stream, as JSON
lines) and `storefront archive verify|status`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import msgspec

from app.config import load_settings
from app.kernel import keys
from app.kernel.archive.manifest import START
from app.kernel.archive.status import PartitionStatus, archive_status, duration, size
from app.kernel.archive.verify import PartitionCheck, verify_partition
from app.kernel.server_info import Memory, memory
from app.kernel.tracing import FIELD as TRACE_FIELD
from app.services import Services, build_services


class ExportedEvent(msgspec.Struct, omit_defaults=True):
    """One line of `storefront events`."""

    partition: int
    id: str
    type: str
    aggregate: str
    version: int
    event: msgspec.Raw
    """The stored event (type, aggregate, version, command_id, at, data)."""
    traceparent: str = ""


def add_event_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--partition", type=int, help="only this partition's (default: all)")
    parser.add_argument("--after", default=START, help="entries after this id (default: all)")
    parser.add_argument("--until", default="+", help="up to this id, inclusive")


def add_archive_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser(
        "verify", help="every segment's checksum, and each partition's segments contiguous"
    )
    actions.add_parser("status", help="per partition: the stream, the archive, what waits")


async def export_events(args: argparse.Namespace) -> int:
    services = build_services(load_settings())
    try:
        partitions = _partitions(services, args.partition)
        encoder = msgspec.json.Encoder()
        out = sys.stdout.buffer
        for partition in partitions:
            async for rows in services.archive.chunks(partition, args.after, args.until):
                out.write(
                    b"".join(encoder.encode(_exported(partition, i, f)) + b"\n" for i, f in rows)
                )
        out.flush()
        return 0
    finally:
        await services.close()


def _partitions(services: Services, only: int | None) -> Sequence[int]:
    count = services.settings.partitions
    if only is None:
        return range(count)
    if not 0 <= only < count:
        raise SystemExit(f"--partition must be 0 to {count - 1}")
    return [only]


def _exported(partition: int, entry_id: str, fields: dict[str, str]) -> ExportedEvent:
    return ExportedEvent(
        partition=partition,
        id=entry_id,
        type=fields.get("t", ""),
        aggregate=fields.get("a", ""),
        version=int(fields.get("v") or 0),
        event=msgspec.Raw(fields.get("e", "null").encode()),
        traceparent=fields.get(TRACE_FIELD, ""),
    )


async def run_archive(args: argparse.Namespace) -> int:
    services = build_services(load_settings())
    try:
        if args.action == "verify":
            checks = [
                await verify_partition(
                    services.write, services.archive_store, partition, keys.events(partition)
                )
                for partition in range(services.settings.partitions)
            ]
            print(f"archive: {services.archive_store.location()}")
            print(show_checks(checks))
            return 1 if any(c.problems for c in checks) else 0
        statuses = await archive_status(services.write, services.settings.partitions, keys.events)
        print(f"archive: {services.archive_store.location()}")
        print(show_status(statuses, await memory(services.write)))
        return 0
    finally:
        await services.close()


def show_checks(checks: Sequence[PartitionCheck]) -> str:
    lines = []
    for check in checks:
        verdict = "ok" if not check.problems else f"{len(check.problems)} problem(s)"
        span = f"{check.first} .. {check.last}" if check.segments else "nothing archived"
        lines.append(
            f"partition {check.partition}: {check.segments} segments, {check.entries:,} "
            f"entries ({span}): {verdict}"
        )
        lines += [f"  - {problem}" for problem in check.problems]
    bad = sum(1 for c in checks if c.problems)
    lines.append("verified: every segment intact and contiguous" if not bad else f"FAILED: {bad}")
    return "\n".join(lines)


def show_status(statuses: Sequence[PartitionStatus], masters: Sequence[Memory]) -> str:
    lines = [
        "partition  in stream  oldest in stream  archived (segments, size)     not archived yet"
    ]
    for s in statuses:
        archived = f"{s.archived_entries:,} ({s.archived_segments}, {size(s.archived_bytes)})"
        lag = f"{s.archive_lag_entries:,}, oldest {duration(s.archive_lag_seconds)}"
        lines.append(
            f"{s.partition:>9}  {s.stream_length:>9,}  {duration(s.oldest_in_stream_age):>16}"
            f"  {archived:<28}  {lag if s.archive_lag_entries else '-'}"
        )
    for index, m in enumerate(masters):
        limit = size(m.max) if m.max else "no maxmemory"
        lines.append(f"redis master {index}: {size(m.used)} used of {limit}")
    return "\n".join(lines)
