"""The async command worker: `python -m workers.commands`."""

from __future__ import annotations

import asyncio

from app.kernel.command_worker import CommandWorker
from app.kernel.heartbeat import HeartbeatPublisher
from app.services import Services
from workers.runtime import run


async def main(services: Services, stop: asyncio.Event, heartbeat: HeartbeatPublisher) -> None:
    worker = CommandWorker(
        services.write,
        services.bus,
        services.statuses,
        heartbeat.id,
        claim_idle_ms=services.settings.claim_idle_ms,
    )
    heartbeat.info = lambda: {"processed": worker.processed}
    await worker.run(stop)


if __name__ == "__main__":
    run("commands", main)
