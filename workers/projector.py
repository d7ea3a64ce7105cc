"""The projector: `python -m workers.projector [name,name,...]` (default: every read model).

One pass per stream and partition applies every read model it runs (kernel/projector_pass.py).

Besides applying events it audits its read models (AUDIT_SECONDS apart, in the one projector
process that holds the audit's lease): see app/kernel/audit.py.
"""

from __future__ import annotations

import asyncio
import sys

from app.kernel.audit import ProjectionAudit, run_audits
from app.kernel.consumer import PartitionHandler
from app.kernel.heartbeat import HeartbeatPublisher
from app.kernel.leases import Leases
from app.kernel.projector_pass import projector_passes
from app.projections.registry import AUDITED, PROJECTOR, build
from app.services import Services
from workers.runtime import run, run_partitioned

AUDIT_LEASE_MS = 60_000
"""A round may read a long stream: the audit's lease outlasts it."""


def names_from(argv: list[str]) -> tuple[str, ...]:
    if len(argv) > 1 and argv[1]:
        wanted = tuple(argv[1].split(","))
        unknown = set(wanted) - set(PROJECTOR)
        if unknown:
            raise SystemExit(f"unknown projections: {sorted(unknown)}; known: {PROJECTOR}")
        return wanted
    return PROJECTOR


async def main(services: Services, stop: asyncio.Event, heartbeat: HeartbeatPublisher) -> None:
    settings = services.settings
    services.metrics.expect_commands(services.bus.registry.public_names)
    projections = build(names_from(sys.argv), settings, services.metrics)
    handlers: list[PartitionHandler] = list(
        projector_passes(
            projections,
            services.read,
            services.write,
            services.metrics,
            services.archive,
            services.read_replication,
        )
    )
    audits = asyncio.create_task(
        run_audits(
            [
                ProjectionAudit(
                    services.write,
                    services.read,
                    projection,
                    sample=settings.audit_sample,
                    entries_per_second=settings.audit_entries_per_second,
                    archive=services.archive,
                )
                for projection in projections
                if projection.name in AUDITED and settings.audit_seconds
            ],
            settings.partitions,
            Leases(services.write, heartbeat.id, max(settings.lease_ms, AUDIT_LEASE_MS)),
            stop,
            every=settings.audit_seconds,
        )
    )
    try:
        await run_partitioned(services, stop, heartbeat, handlers)
    finally:
        stop.set()
        await audits


if __name__ == "__main__":
    run("projector", main)
