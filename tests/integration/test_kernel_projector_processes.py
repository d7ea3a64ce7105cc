"""Two projector processes split the partitions, keep each product in order, and take over."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from app.config import Settings
from app.domain.products import ChangePrice, CreateProduct, RenameProduct, RestockProduct
from app.kernel import keys
from app.kernel.heartbeat import Heartbeat
from app.kernel.partitions import partition_of
from app.kernel.pass_groups import pass_group
from app.kernel.projection import group_name
from app.queries import catalog
from app.services import Services
from tests.integration.conftest import ADMIN
from tests.support.kernel_catalog import product_record
from tests.support.polling import eventually
from tests.support.processes import ProcessGroup
from tests.support.stores import store_env

PRODUCTS = [f"ORD-{i:02d}" for i in range(50)]
GROUP = pass_group(keys.events(0))
"""The projector's pass: one group (and lease per partition) for every read model."""
_beat = msgspec.json.Decoder(Heartbeat)


@pytest.fixture
def processes(log_dir: Path, settings: Settings) -> Iterator[ProcessGroup]:
    group = ProcessGroup(
        log_dir,
        {
            **store_env(settings.redis_url),
            "APP_ENV": "test",
            "PARTITIONS": str(settings.partitions),
            "LOG_LEVEL": "INFO",
        },
    )
    try:
        yield group
    finally:
        group.stop_all()


async def _lease_owners(services: Services) -> list[str | None]:
    return [
        await services.write.get(keys.lease(GROUP, p)) for p in range(services.settings.partitions)
    ]


async def _projector_beats(services: Services) -> dict[int, Heartbeat]:
    """Heartbeats of projector processes, by pid."""
    raw = await services.write.hgetall(keys.heartbeats())
    beats = [_beat.decode(value) for value in raw.values()]
    return {b.pid: b for b in beats if b.kind == "projector"}


async def _fire_updates(
    services: Services, count: int, seed: int, done: list[int] | None = None, lanes: int = 40
) -> None:
    """`count` interleaved renames, price changes and restocks over the 50 products."""
    done = done if done is not None else [0]
    rng = random.Random(seed)
    commands = []
    for n in range(count):
        sku = rng.choice(PRODUCTS)
        kind = rng.randrange(3)
        if kind == 0:
            commands.append(RenameProduct(sku, f"{sku} v{seed}.{n}"))
        elif kind == 1:
            commands.append(ChangePrice(sku, rng.randint(100, 99_999)))
        else:
            commands.append(RestockProduct(sku, rng.randint(1, 20)))

    async def lane(index: int) -> None:
        for command in commands[index::lanes]:
            reply = await services.intake.submit(command, ADMIN)
            assert reply.status_code == 200, reply
            done[0] += 1

    await asyncio.gather(*(lane(i) for i in range(lanes)))


async def _mismatches(services: Services) -> list[str]:
    """Products whose catalog row differs from the write model (name, price, available)."""
    wrong = []
    for sku in PRODUCTS:
        _, product = await product_record(services, sku)
        view = await catalog.get_product(services.read_side, sku)
        assert product is not None
        expected = (product.name, product.price_cents, product.available)
        seen = (view.name, view.price_cents, view.available) if view else None
        if seen != expected:
            wrong.append(f"{sku}: read {seen} write {expected}")
    return wrong


async def _assert_versions_and_no_gap(services: Services) -> None:
    partitions = services.settings.partitions
    for sku in PRODUCTS:
        version, _ = await product_record(services, sku)
        applied = keys.applied_versions("catalog", partition_of(sku, partitions))
        assert await services.read.hget(applied, f"product:{sku}") == str(version), sku
    for partition in range(partitions):
        health = await services.read.hgetall(keys.projection_health("catalog", partition))
        assert "gap" not in health, partition
    assert await services.write.xlen(keys.dead_letters(group_name("catalog"))) == 0


def _survivor_owns_all(owners: list[str | None], survivor: str) -> bool:
    return all(owner == survivor for owner in owners)


async def test_two_projector_processes_split_partitions_keep_order_and_take_over(
    services: Services, processes: ProcessGroup
) -> None:
    """Two `workers.projector` processes share the catalog's partitions; thousands of
    interleaved updates over 50 products end with every row equal to the write model and no
    gap. After one is SIGKILLed mid-stream the other takes its partitions and converges."""
    for sku in PRODUCTS:
        reply = await services.intake.submit(CreateProduct(sku, sku, 1000, 10), ADMIN)
        assert reply.status_code == 200

    first = processes.start("projector-a", "workers.projector")
    await eventually(
        lambda: _lease_owners(services),
        until=lambda owners: None not in owners,
        message="first projector holds every partition",
        timeout=30,
    )
    second = processes.start("projector-b", "workers.projector")
    owners = await eventually(
        lambda: _lease_owners(services),
        until=lambda owners: None not in owners and len(set(owners)) == 2,
        message="partitions split between the two projectors",
        timeout=30,
    )
    beats = await eventually(
        lambda: _projector_beats(services),
        until=lambda b: (
            {p.popen.pid for p in (first, second)} <= b.keys()
            and all(int(b[p.popen.pid].info.get("partitions", 0)) > 0 for p in (first, second))
        ),
        message="both projectors report partitions",
    )
    by_owner = Counter(owners)
    assert set(by_owner) == {beats[first.popen.pid].id, beats[second.popen.pid].id}

    await _fire_updates(services, 3000, seed=1)
    await eventually(
        lambda: _mismatches(services),
        until=lambda wrong: wrong == [],
        message="catalog equals the write model",
        timeout=60,
    )
    await _assert_versions_and_no_gap(services)

    # phase two: SIGKILL one projector while updates keep coming
    survivor = beats[second.popen.pid].id
    done = [0]
    writer = asyncio.create_task(_fire_updates(services, 1500, seed=2, done=done))

    async def written() -> int:
        return done[0]

    await eventually(written, until=lambda n: n >= 300, message="writes under way")
    first.kill()
    assert not writer.done()
    await writer
    await _fire_updates(services, 300, seed=3)
    await eventually(
        lambda: _lease_owners(services),
        until=lambda owners: _survivor_owns_all(owners, survivor),
        message="the survivor owns every partition",
        timeout=45,
    )
    await eventually(
        lambda: _mismatches(services),
        until=lambda wrong: wrong == [],
        message="catalog converges after the takeover",
        timeout=60,
    )
    await _assert_versions_and_no_gap(services)
    assert second.alive(), processes.logs()
