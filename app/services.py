"""Everything a process needs, built once from the settings and two Redis clients."""

from __future__ import annotations

import logging
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
from app.kernel.replication import Replication
from app.kernel.running import RunningCommands
from app.kernel.server_info import (
    ServerInfo,
    check_durability,
    check_replicas,
    replicas,
    server_info,
)
from app.observability.metrics import PipelineMetrics
from app.processes.catalog_import import import_runner
from app.projections.registry import rebuildable
from app.wiring import build_registry

log = logging.getLogger(__name__)


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
    replication: Replication
    """The write side's replicas every acknowledgement waits for (REDIS_WAIT_REPLICAS)."""
    read_replication: Replication
    """The read models' server's (READ_REDIS_WAIT_REPLICAS)."""
    running: RunningCommands
    server: ServerInfo | None = None
    """What the write Redis is, once `inspect_server` ran."""
    read_replicas: list[int] | None = None
    """Replicas of the read models' server, when it is another server and waited for."""
    durability_warning: str = ""
    replication_warning: str = ""

    async def inspect_server(self) -> ServerInfo:
        """Read the server's version, durability and replicas; refuse production without
        AOF; warn when the masters have fewer replicas than acknowledgements wait for."""
        self.server = await server_info(self.write)
        self.durability_warning = check_durability(self.server, production=self.settings.production)
        found = [check_replicas(self.server.replicas, self.replication.replicas, "REDIS_URL")]
        if self.read is not self.write and self.read_replication.on:
            self.read_replicas = await replicas(self.read)
            found.append(
                check_replicas(self.read_replicas, self.read_replication.replicas, "READ_REDIS_URL")
            )
        self.replication_warning = "; ".join(w for w in found if w)
        if self.replication_warning:
            log.warning("%s", self.replication_warning)
        return self.server

    @property
    def warnings(self) -> list[str]:
        """What this process tells the status page (via its heartbeat)."""
        return [w for w in (self.durability_warning, self.replication_warning) if w]

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
    replication = Replication(settings.redis_wait_replicas, settings.redis_wait_timeout_ms)
    read_replication = Replication(settings.read_wait_replicas, settings.redis_wait_timeout_ms)
    statuses = CommandStatusStore(write, settings.status_ttl_seconds, replication)
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
        CommitStore(write, settings.status_ttl_seconds, replication),
        observer,
        metrics,
    )
    intake = CommandIntake(
        bus,
        statuses,
        IdempotencyStore(write, settings.secret_key, settings.partitions, replication=replication),
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
        replication=replication,
        read_replication=read_replication,
        running=RunningCommands(write, settings.status_ttl_seconds),
    )
