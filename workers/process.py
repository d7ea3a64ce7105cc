"""The order fulfilment process manager: `python -m workers.process`."""

from __future__ import annotations

import asyncio

from app.kernel.heartbeat import HeartbeatPublisher
from app.processes.fulfilment import Fulfilment
from app.processes.fulfilment_sweep import sweeping
from app.services import Services
from workers.runtime import run, run_partitioned


async def main(services: Services, stop: asyncio.Event, heartbeat: HeartbeatPublisher) -> None:
    services.metrics.expect_gateway()
    fulfilment = sweeping(
        services.bus,
        Fulfilment(services.bus, services.gateway),
        services.running,
        services.settings.sweep_after_seconds,
    )
    await run_partitioned(services, stop, heartbeat, [fulfilment])


if __name__ == "__main__":
    run("process", main)
