"""The async command worker: `python -m workers.commands`."""

from __future__ import annotations

import asyncio

from app.kernel.command_worker import CommandQueue
from app.kernel.heartbeat import HeartbeatPublisher
from app.services import Services
from workers.runtime import run, run_partitioned


async def main(services: Services, stop: asyncio.Event, heartbeat: HeartbeatPublisher) -> None:
    queue = CommandQueue(services.write, services.bus, services.statuses)
    try:
        await run_partitioned(
            services, stop, heartbeat, [queue], info=lambda: {"processed": queue.processed}
        )
    finally:
        await queue.close()


if __name__ == "__main__":
    run("commands", main)
