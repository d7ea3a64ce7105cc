"""Everything a process needs, built once from the settings and two Redis clients."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from app.adapters.cart import CartStore
from app.adapters.payment_gateway import SimulatedGateway
from app.adapters.redis_client import connect
from app.adapters.sessions import SessionStore
from app.adapters.users import UserStore
from app.config import Settings
from app.consumers import consumer_groups
from app.kernel import keys
from app.kernel.archive.reader import ArchiveReader
from app.kernel.archive.store import ArchiveStore, open_store
from app.kernel.backlog import Backlog
from app.kernel.bus import CommandBus
from app.kernel.bus_timing import Observer
from app.kernel.command_status_store import CommandStatusStore
from app.kernel.commit import CommitStore
from app.kernel.idempotency import IdempotencyStore
from app.kernel.intake import CommandIntake
from app.kernel.read_side import ReadSide
from app.kernel.rebuild_commands import rebuild_runner
from app.kernel.server_info import ServerInfo, check_durability, server_info
from app.observability.metrics import PipelineMetrics
from app.processes.catalog_import import import_runner
from app.projections.registry import rebuildable
from app.wiring import build_registry


@dataclass
class Services:
    settings: Settings
    write: Redis
    read: Redis
    read_side: ReadSide
    """The read Redis with the partitions its read models are kept in (what queries take)."""
    bus: CommandBus
    statuses: CommandStatusStore
    intake: CommandIntake
    users: UserStore
    sessions: SessionStore
    carts: CartStore
    gateway: SimulatedGateway
    metrics: PipelineMetrics
    archive_store: ArchiveStore
    archive: ArchiveReader
    """The partitions' events, archive then stream (a rebuild, the audit, an export)."""
    server: ServerInfo | None = None
    """What the write Redis is, once `inspect_server` ran."""
    durability_warning: str = ""

    async def inspect_server(self) -> ServerInfo:
        """Read the server's version and durability; refuse production without AOF."""
        self.server = await server_info(self.write)
        self.durability_warning = check_durability(self.server, production=self.settings.production)
        return self.server

    async def close(self) -> None:
        await self.write.aclose()
        if self.read is not self.write:
            await self.read.aclose()


def build_services(
    settings: Settings, observer: Observer | None = None, metrics: PipelineMetrics | None = None
) -> Services:
    metrics = metrics or PipelineMetrics()
    write = connect(settings.redis_url, cluster=settings.cluster)
    read = (
        connect(settings.read_redis_url, cluster=settings.read_cluster)
        if settings.read_redis_url
        else write
    )
    gateway = SimulatedGateway(
        write,
        settings.secret_key,
        latency_ms=settings.payment_latency_ms,
        failure_rate=settings.payment_failure_rate,
        timeout_ms=settings.payment_timeout_ms,
        retries=settings.payment_retries,
        ttl_seconds=settings.status_ttl_seconds,
        gated=settings.payment_gate,
        observe=metrics.gateway_request,
    )
    statuses = CommandStatusStore(write, settings.status_ttl_seconds)
    archive_store = open_store(settings.archive_url)
    archive = ArchiveReader(write, archive_store, keys.events)
    registry = build_registry(
        gateway.tokenize,
        import_runner(statuses),
        consumer_groups(),
        rebuild_runner(read, rebuildable(settings), statuses, settings.lease_ms, archive),
    )
    bus = CommandBus(
        write,
        registry,
        settings.partitions,
        CommitStore(write, settings.status_ttl_seconds),
        observer,
        metrics,
    )
    intake = CommandIntake(
        bus,
        statuses,
        IdempotencyStore(write, settings.secret_key, settings.partitions),
        Backlog(write, settings.partitions),
        backlog_limit=settings.backlog_limit,
        same_slot_scripts=settings.cluster,
    )
    return Services(
        settings=settings,
        write=write,
        read=read,
        read_side=ReadSide(read, settings.partitions),
        bus=bus,
        statuses=statuses,
        intake=intake,
        users=UserStore(write),
        sessions=SessionStore(write, settings.session_ttl_seconds),
        carts=CartStore(write, settings.cart_ttl_seconds),
        gateway=gateway,
        metrics=metrics,
        archive_store=archive_store,
        archive=archive,
    )
