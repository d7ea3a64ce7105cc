"""The notifier: integration events → in-app notifications. `python -m workers.notifier`."""

from __future__ import annotations

import asyncio

from app.kernel.heartbeat import HeartbeatPublisher
from app.kernel.projection import ProjectionHandler
from app.projections.registry import NOTIFIER, build
from app.services import Services
from workers.runtime import run, run_partitioned


async def main(services: Services, stop: asyncio.Event, heartbeat: HeartbeatPublisher) -> None:
    handlers = [
        ProjectionHandler(p, services.read, services.metrics, replication=services.read_replication)
        for p in build(NOTIFIER, services.settings, services.metrics)
    ]
    await run_partitioned(services, stop, heartbeat, list(handlers))


if __name__ == "__main__":
    run("notifier", main)
