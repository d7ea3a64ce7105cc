"""The archiver: `python -m workers.archiver` (see app/kernel/archive/archiver.py)."""

from __future__ import annotations

import asyncio

from app.kernel import keys
from app.kernel.archive.archiver import Archiver
from app.kernel.heartbeat import HeartbeatPublisher, live_heartbeats
from app.kernel.leases import Leases
from app.services import Services
from workers.runtime import MISSED_BEATS, run


async def main(services: Services, stop: asyncio.Event, heartbeat: HeartbeatPublisher) -> None:
    settings = services.settings
    stale_after = MISSED_BEATS * settings.heartbeat_seconds

    async def members() -> int:
        beats = await live_heartbeats(services.write, stale_after=stale_after)
        return sum(1 for b in beats if b.kind == heartbeat.kind)

    archiver = Archiver(
        services.write,
        services.archive_store,
        settings.partitions,
        Leases(services.write, heartbeat.id, settings.lease_ms),
        members,
        keys.events,
        segment_events=settings.archive_segment_events,
        segment_seconds=settings.archive_segment_seconds,
        retention_seconds=settings.event_retention_seconds,
    )
    heartbeat.info = lambda: {"partitions": len(archiver.owned), "archived": archiver.archived}
    heartbeat.stalls = archiver.stalls
    await heartbeat.beat()
    await archiver.run(stop, tick=min(1.0, settings.archive_segment_seconds / 2))


if __name__ == "__main__":
    run("archiver", main)
