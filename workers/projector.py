"""The projector: `python -m workers.projector [name,name,...]` (default: every read model)."""

from __future__ import annotations

import asyncio
import sys

from app.kernel.consumer import PartitionHandler
from app.kernel.heartbeat import HeartbeatPublisher
from app.kernel.projection import ProjectionHandler
from app.projections.registry import PROJECTOR, build
from app.services import Services
from workers.runtime import run, run_partitioned


def names_from(argv: list[str]) -> tuple[str, ...]:
    if len(argv) > 1 and argv[1]:
        wanted = tuple(argv[1].split(","))
        unknown = set(wanted) - set(PROJECTOR)
        if unknown:
            raise SystemExit(f"unknown projections: {sorted(unknown)}; known: {PROJECTOR}")
        return wanted
    return PROJECTOR


async def main(services: Services, stop: asyncio.Event, heartbeat: HeartbeatPublisher) -> None:
    services.metrics.expect_commands(services.bus.registry.public_names)
    handlers: list[PartitionHandler] = [
        ProjectionHandler(p, services.read, services.metrics)
        for p in build(names_from(sys.argv), services.settings, services.metrics)
    ]
    await run_partitioned(services, stop, heartbeat, handlers)


if __name__ == "__main__":
    run("projector", main)
