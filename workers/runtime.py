"""What every worker process shares: settings, Redis, signals, heartbeat, clean shutdown,
telemetry (spans, the span store's writer) and /metrics on METRICS_PORT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

from app.config import load_settings
from app.kernel.backoff import RECONNECT
from app.kernel.consumer import INFRA_ERRORS, PartitionedConsumer, PartitionHandler
from app.kernel.heartbeat import HeartbeatPublisher, live_heartbeats, worker_id
from app.kernel.leases import Leases
from app.logs import configure_logging
from app.observability.metrics_server import MetricsServer
from app.observability.telemetry import configure_telemetry
from app.services import Services, build_services

log = logging.getLogger("workers")
MISSED_BEATS = 3
"""A process whose last beat is this many beats old counts as dead (its share goes)."""

Main = Callable[[Services, asyncio.Event, HeartbeatPublisher], Awaitable[None]]


async def wait_for_redis(services: Services, stop: asyncio.Event) -> None:
    attempt = 0
    while not stop.is_set():
        try:
            await services.write.ping()
            if services.read is not services.write:
                await services.read.ping()
            return
        except INFRA_ERRORS as exc:
            log.info("waiting for redis: %s", exc)
            await RECONNECT.sleep(attempt, stop)
            attempt += 1


async def _beat(heartbeat: HeartbeatPublisher, stop: asyncio.Event, every: float) -> None:
    while not stop.is_set():
        try:
            await heartbeat.beat()
        except INFRA_ERRORS as exc:
            log.warning("heartbeat failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)


async def _serve(kind: str, main: Main) -> None:
    settings = load_settings()
    configure_logging(settings.log_level, kind, settings.log_format)
    services = build_services(settings)
    telemetry = configure_telemetry(settings, kind, services.read)
    metrics = MetricsServer(
        services.metrics.registry,
        settings.metrics_host,
        settings.metrics_port,
        settings.metrics_token,
    )
    if settings.metrics_port:
        await metrics.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    heartbeat = HeartbeatPublisher(services.write, kind, worker_id(kind))
    heartbeat.warnings = lambda: services.warnings
    await wait_for_redis(services, stop)
    if stop.is_set():
        await metrics.stop()
        await services.close()
        return
    await services.inspect_server()
    beat = asyncio.create_task(_beat(heartbeat, stop, settings.heartbeat_seconds))
    spans = asyncio.create_task(telemetry.run(stop))
    log.info("%s %s started (partitions=%d)", kind, heartbeat.id, settings.partitions)
    try:
        await main(services, stop, heartbeat)
    finally:
        stop.set()
        beat.cancel()
        with contextlib.suppress(*INFRA_ERRORS):
            await heartbeat.remove()
        await spans  # the span store's last batch
        await metrics.stop()
        telemetry.shutdown()
        await services.close()
        log.info("%s %s stopped", kind, heartbeat.id)


def run(kind: str, main: Main) -> None:
    asyncio.run(_serve(kind, main))


async def run_partitioned(
    services: Services,
    stop: asyncio.Event,
    heartbeat: HeartbeatPublisher,
    handlers: list[PartitionHandler],
    info: Callable[[], dict[str, int | str]] = dict,
) -> None:
    """Own a fair share of the partitions of `handlers` among live workers of the same kind."""

    stale_after = MISSED_BEATS * services.settings.heartbeat_seconds

    async def members() -> int:
        beats = await live_heartbeats(services.write, stale_after=stale_after)
        return sum(1 for b in beats if b.kind == heartbeat.kind)

    consumer = PartitionedConsumer(
        services.write,
        handlers,
        services.settings.partitions,
        Leases(services.write, heartbeat.id, services.settings.lease_ms),
        members,
        stall_seconds=services.settings.stall_seconds,
        give_up_seconds=services.settings.give_up_seconds,
        replication=services.replication,
    )
    heartbeat.info = lambda: {
        "partitions": len(consumer.owned),
        "wait_replicas": services.replication.replicas,
        **info(),
    }
    heartbeat.stalls = consumer.stalls
    await heartbeat.beat()
    await consumer.run(stop)
