"""Integration fixtures: real Redis per session, flushed before every test.

The kernel, catalog, orders and fulfilment tests run twice: on one server, and on a local
3-master Redis Cluster holding both sides, events and read models (one cluster per session,
so per xdist worker). The shadow rebuild's cut swaps each partition in a transaction of its
own slot, so it runs on the cluster like the rest. The read side's API tests (queries and
their positions, pushes, live regions) run their process stacks on a server of their own and
then on the cluster (`stack_cluster`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import httpx
import pytest
import redis

from app.config import Settings, load_settings
from app.kernel.command_worker import CommandQueue
from app.kernel.consumer import PartitionedConsumer, PartitionHandler
from app.kernel.leases import Leases
from app.kernel.messages import Actor
from app.kernel.projection import ProjectionHandler
from app.kernel.projector_pass import projector_passes
from app.processes.fulfilment import Fulfilment
from app.processes.fulfilment_sweep import sweeping
from app.projections.registry import NOTIFIER, PROJECTOR, build
from app.services import Services, build_services
from tests.support.api_client import Storefront
from tests.support.redis_cluster import RedisCluster, running_cluster
from tests.support.redis_server import RedisServer, running_redis
from tests.support.stores import store_env

ADMIN = Actor("admin", frozenset({"admin"}))
ALICE = Actor("alice", frozenset({"customer"}))
BOB = Actor("bob", frozenset({"customer"}))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


ON_CLUSTER_TOO = ("test_kernel_", "test_catalog_", "test_orders_", "test_fulfilment_")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rpartition(".")[2]
    if "redis_url" in metafunc.fixturenames and module.startswith(ON_CLUSTER_TOO):
        metafunc.parametrize("redis_url", ["single", "cluster"], indirect=True)


@pytest.fixture(scope="module", params=["single", "cluster"])
def stack_cluster(request: pytest.FixtureRequest) -> RedisCluster | None:
    """Where a module's process stack (tests.support.api_client.running_storefront) runs, for
    a module asking: on a server of its own (None), then on the session's cluster, both sides
    on it (the read side's queries, positions and pushes, gathered from three masters)."""
    if request.param == "single":
        return None
    cluster: RedisCluster = request.getfixturevalue("redis_cluster")
    return cluster


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


def _flush(url: str) -> None:
    client = redis.Redis.from_url(url)
    client.flushall()
    client.close()


@pytest.fixture
def redis_url(request: pytest.FixtureRequest, redis_server: RedisServer) -> str:
    """The stack's URL, empty: one server (default) or, when asked, the cluster (both sides
    on it)."""
    if getattr(request, "param", "single") == "single":
        _flush(redis_server.url)
        return redis_server.url
    cluster: RedisCluster = request.getfixturevalue("redis_cluster")
    cluster.flushall()
    return cluster.url


def make_settings(redis_url: str, **overrides: str) -> Settings:
    env = {
        **store_env(redis_url),
        "APP_ENV": "test",
        "PARTITIONS": "4",
        "PAYMENT_LATENCY_MS": "0",
        "PAYMENT_FAILURE_RATE": "0",
        "LOG_LEVEL": "WARNING",
    }
    env.update(overrides)
    return load_settings(env)


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return make_settings(redis_url)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    made = build_services(settings)
    try:
        yield made
    finally:
        await made.close()


async def _one_member() -> int:
    return 1


@contextlib.asynccontextmanager
async def running_workers(
    settings: Settings,
    kinds: Sequence[str] = ("commands", "projector", "process", "notifier"),
    *,
    owner: str = "test",
) -> AsyncIterator[list[Services]]:
    """The real worker loops, in this event loop, each kind with its own Redis clients."""
    stop = asyncio.Event()
    made: list[Services] = []
    tasks: list[asyncio.Task[None]] = []
    queues: list[CommandQueue] = []
    for kind in kinds:
        services = build_services(settings)
        made.append(services)
        handlers: list[PartitionHandler]
        if kind == "commands":
            queues.append(CommandQueue(services.write, services.bus, services.statuses))
            handlers = [queues[-1]]
        elif kind == "projector":
            handlers = list(
                projector_passes(
                    build(PROJECTOR, settings),
                    services.read,
                    services.write,
                    replication=services.read_replication,
                )
            )
        elif kind == "notifier":
            handlers = [
                ProjectionHandler(p, services.read, replication=services.read_replication)
                for p in build(NOTIFIER, settings)
            ]
        else:
            fulfilment = Fulfilment(services.bus, services.gateway)
            handlers = [
                sweeping(services.bus, fulfilment, services.running, settings.sweep_after_seconds)
            ]
        consumer = PartitionedConsumer(
            services.write,
            handlers,
            settings.partitions,
            Leases(services.write, f"{owner}-{kind}", settings.lease_ms),
            _one_member,
            block_ms=200,
            replication=services.replication,
        )
        tasks.append(asyncio.create_task(consumer.run(stop, tick=0.2)))
    try:
        yield made
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=20)
        for queue in queues:
            await queue.close()
        for services in made:
            await services.close()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path


# --- HTTP clients of a module's `storefront` (tests.support.api_client), one per user ------


@pytest.fixture
async def admin(storefront: Storefront) -> AsyncIterator[httpx.AsyncClient]:
    async with storefront.client("admin") as client:
        yield client


@pytest.fixture
async def alice(storefront: Storefront) -> AsyncIterator[httpx.AsyncClient]:
    async with storefront.client("alice") as client:
        yield client


@pytest.fixture
async def bob(storefront: Storefront) -> AsyncIterator[httpx.AsyncClient]:
    async with storefront.client("bob") as client:
        yield client


@pytest.fixture
async def anon(storefront: Storefront) -> AsyncIterator[httpx.AsyncClient]:
    async with storefront.client() as client:
        yield client
