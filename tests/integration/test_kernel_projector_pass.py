"""The projector's one pass per partition: several read models on one consumer group.

Each read model gets exactly its events once; one read model's poison event is dead-lettered
for it alone; a read model added later catches up and joins; a batch re-delivered after a
crash (written, not acknowledged) applies nothing twice; and a deployment that ran one
group per read model moves to the pass without replaying or skipping anything.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterable

from app.config import Settings
from app.domain import products as p
from app.domain.products import CreateProduct, RenameProduct, RestockProduct
from app.kernel import keys
from app.kernel.consumer import PartitionedConsumer, PartitionHandler, parse_entries
from app.kernel.leases import Leases
from app.kernel.pass_groups import pass_group
from app.kernel.projection import (
    AnyProjection,
    Applied,
    EventProjection,
    ProjectionHandler,
    group_name,
)
from app.kernel.projector_pass import ProjectorPass
from app.kernel.read_model_writes import ReadModelWrites
from app.kernel.redis_types import text_dict
from app.kernel.stream_reads import ensure_group
from app.kernel.views import Change
from app.services import Services
from tests.integration.conftest import ADMIN
from tests.support.kernel_catalog import stored_events
from tests.support.orders_helpers import wait_idle
from tests.support.polling import eventually

SKUS = [f"PASS-{i:02d}" for i in range(12)]
POISON = SKUS[3]
MORE = [f"PASS-MORE-{i}" for i in range(6)]
PASS = pass_group(keys.events(0))


def _counts_key(name: str, partition: int) -> str:
    return keys.read_model(name, partition, "counts")


class _Counting(EventProjection[p.ProductEvent]):
    """Counts every product event it is given, by (type, sku): a HINCRBY, so applying one
    twice would show."""

    def __init__(self, name: str) -> None:
        self.name = name

    def apply(self, item: Applied[p.ProductEvent], tx: ReadModelWrites) -> Iterable[Change]:
        tx.hincrby(
            _counts_key(self.name, tx.partition), f"{item.stored.type}:{item.stored.aggregate_id}"
        )
        return []


class _Restocks(EventProjection[p.ProductRestocked]):
    name = "t_restocks"

    def apply(self, item: Applied[p.ProductRestocked], tx: ReadModelWrites) -> Iterable[Change]:
        tx.hincrby(
            _counts_key(self.name, tx.partition), f"{item.stored.type}:{item.stored.aggregate_id}"
        )
        return []


class _Poisoned(_Counting):
    """Fails on every event of one product."""

    def apply(self, item: Applied[p.ProductEvent], tx: ReadModelWrites) -> Iterable[Change]:
        if item.stored.aggregate_id == POISON:
            raise ValueError(f"cannot take {POISON}")
        return super().apply(item, tx)


async def _counts(services: Services, name: str) -> Counter[str]:
    counted: Counter[str] = Counter()
    for partition in range(services.settings.partitions):
        raw = text_dict(await services.read.hgetall(_counts_key(name, partition)))
        counted.update({field: int(value) for field, value in raw.items()})
    return counted


async def _expected(services: Services, types: set[str] | None = None) -> Counter[str]:
    """Each (type, sku) of the product events in the streams, counted once."""
    return Counter(
        f"{e.type}:{e.aggregate_id}"
        for _, e in await stored_events(services.write, services.settings.partitions)
        if types is None or e.type in types
    )


async def _write_events(services: Services, skus: list[str]) -> None:
    for sku in skus:
        for command in (CreateProduct(sku, "Mug", 500, 1), RestockProduct(sku, 2)):
            assert (await services.intake.submit(command, ADMIN)).status_code == 200
        assert (await services.intake.submit(RenameProduct(sku, "Cup"), ADMIN)).status_code == 200


async def _one() -> int:
    return 1


@contextlib.asynccontextmanager
async def _running(
    services: Services, handlers: list[PartitionHandler], owner: str = "pass"
) -> AsyncIterator[None]:
    consumer = PartitionedConsumer(
        services.write,
        handlers,
        services.settings.partitions,
        Leases(services.write, owner),
        _one,
        block_ms=100,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop, tick=0.1))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)


def _pass(services: Services, projections: list[AnyProjection]) -> ProjectorPass:
    return ProjectorPass(projections, services.read, services.write)


async def _settled(services: Services, names: list[str]) -> None:
    """The pass idle and each read model's checkpoint where the pass is, in every partition."""
    partitions = services.settings.partitions
    every = [keys.checkpoint(name, partition) for name in names for partition in range(partitions)]
    await eventually(
        lambda: services.read.exists(*every),
        until=lambda found: found == len(every),
        message=f"{names} at the pass in every partition",
    )
    await wait_idle(services, [(keys.events, PASS)])


async def test_each_read_model_gets_exactly_its_events_once(
    services: Services, settings: Settings
) -> None:
    await _write_events(services, SKUS)
    models: list[AnyProjection] = [_Counting("t_all"), _Restocks()]
    async with _running(services, [_pass(services, models)]):
        await _settled(services, ["t_all", "t_restocks"])
    assert await _counts(services, "t_all") == await _expected(services)
    restocks = await _expected(services, {"ProductRestocked"})
    assert await _counts(services, "t_restocks") == restocks
    assert sum(restocks.values()) == len(SKUS)
    for partition in range(settings.partitions):  # one group read the stream, no other
        groups = await services.write.xinfo_groups(keys.events(partition))
        assert [g["name"] for g in groups] == [PASS]


async def test_one_read_models_poison_event_is_dead_lettered_and_the_others_go_on(
    services: Services, settings: Settings
) -> None:
    await _write_events(services, SKUS)
    models: list[AnyProjection] = [_Poisoned("t_poisoned"), _Counting("t_all")]
    async with _running(services, [_pass(services, models)]):
        await _settled(services, ["t_poisoned", "t_all"])
        # the first of its events fails, its two later ones wait behind it
        letters = await services.write.xlen(keys.dead_letters(group_name("t_poisoned")))
        assert letters == 3
    assert await services.write.xlen(keys.dead_letters(group_name("t_all"))) == 0
    everything = await _expected(services)
    assert await _counts(services, "t_all") == everything
    assert await _counts(services, "t_poisoned") == Counter(
        {event: n for event, n in everything.items() if not event.endswith(POISON)}
    )
    health = text_dict(await services.write.hgetall(keys.consumer_health(group_name("t_poisoned"))))
    assert health["dead_letters"] == "1" and "cannot take" in health["last_error"]


async def test_a_read_model_added_later_catches_up_and_joins_the_pass(
    services: Services, settings: Settings
) -> None:
    await _write_events(services, SKUS[:6])
    async with _running(services, [_pass(services, [_Counting("t_all")])]):
        await _settled(services, ["t_all"])
    await _write_events(services, SKUS[6:])
    models: list[AnyProjection] = [_Counting("t_all"), _Counting("t_late")]
    async with _running(services, [_pass(services, models)], owner="later"):
        await _settled(services, ["t_all", "t_late"])
        await _write_events(services, ["PASS-LAST"])  # and both go on in the pass
        await _settled(services, ["t_all", "t_late"])
    everything = await _expected(services)
    assert await _counts(services, "t_all") == everything
    assert await _counts(services, "t_late") == everything


async def test_a_read_model_paused_by_its_own_lease_is_left_out_then_caught_up(
    services: Services, settings: Settings
) -> None:
    """What a rebuild's cut does: it takes the read model's lease; the pass goes on with
    the others, and the paused one catches up once the lease is given back."""
    await _write_events(services, SKUS)
    models: list[AnyProjection] = [_Counting("t_all"), _Counting("t_paused")]
    async with _running(services, [_pass(services, models)]):
        await _settled(services, ["t_all", "t_paused"])
    before = await _counts(services, "t_paused")
    await _write_events(services, MORE)
    cut = Leases(services.write, "rebuild")
    for partition in range(settings.partitions):
        await cut.take(group_name("t_paused"), partition)
    async with _running(services, [_pass(services, models)], owner="next"):
        await eventually(
            lambda: _counts(services, "t_all"),
            until=lambda found: sum(found.values()) == 3 * (len(SKUS) + len(MORE)),
            message="the others applied",
        )
        await wait_idle(services, [(keys.events, PASS)])
        assert await _counts(services, "t_paused") == before
        for partition in range(settings.partitions):
            await cut.release(group_name("t_paused"), partition)
        await eventually(
            lambda: _counts(services, "t_paused"),
            until=lambda found: sum(found.values()) == 3 * (len(SKUS) + len(MORE)),
            message="the paused one caught up",
        )
        await _settled(services, ["t_all", "t_paused"])
    assert await _counts(services, "t_paused") == await _expected(services)


async def test_a_batch_read_again_after_a_crash_applies_nothing_twice(
    services: Services, settings: Settings
) -> None:
    """Written but never acknowledged (killed in between): the same entries come back to
    the next owner, and every read model's checkpoint — moved by the same script as its
    writes and versions — skips them."""
    await _write_events(services, SKUS[:3])
    models: list[AnyProjection] = [_Counting("t_all"), _Restocks()]
    handler = _pass(services, models)
    for partition in range(settings.partitions):
        stream = keys.events(partition)
        await ensure_group(services.write, stream, PASS)
        reply = await services.write.xreadgroup(PASS, "p0", {stream: ">"}, count=100)
        entries = parse_entries(partition, reply)
        if not entries:
            continue
        await handler.ensure_group(partition)
        await handler.handle(partition, entries)
        again = _pass(services, models)  # a new owner, reading the pending entries again
        await again.ensure_group(partition)
        await again.handle(partition, entries)
    assert await _counts(services, "t_all") == await _expected(services)
    assert await _counts(services, "t_restocks") == await _expected(services, {"ProductRestocked"})


async def test_a_deployment_with_one_group_per_read_model_moves_to_the_pass(
    services: Services, settings: Settings
) -> None:
    """The old groups stood at different places (one had entries pending, delivered and
    not applied): the pass starts from the earliest and nothing is applied twice or
    skipped; the old groups are dropped (the archive waits for every group)."""
    await _write_events(services, SKUS)
    ahead, behind = _Counting("t_ahead"), _Counting("t_behind")
    for partition in range(settings.partitions):
        stream = keys.events(partition)
        for projection, count in ((ahead, 100), (behind, 4)):
            group = group_name(projection.name)
            await ensure_group(services.write, stream, group)
            entries = parse_entries(
                partition,
                await services.write.xreadgroup(group, "p0", {stream: ">"}, count=count),
            )
            if entries:
                await ProjectionHandler(projection, services.read).handle(partition, entries)
                await services.write.xack(stream, group, *(e.id for e in entries[:-1]))
        # and `behind` was delivered two more it never applied (its owner was killed)
        await services.write.xreadgroup(group_name("t_behind"), "p0", {stream: ">"}, count=2)
    models: list[AnyProjection] = [_Counting("t_ahead"), _Counting("t_behind")]
    async with _running(services, [_pass(services, models)]):
        await _settled(services, ["t_ahead", "t_behind"])
    everything = await _expected(services)
    assert await _counts(services, "t_ahead") == everything
    assert await _counts(services, "t_behind") == everything
    for partition in range(settings.partitions):
        groups = await services.write.xinfo_groups(keys.events(partition))
        assert [g["name"] for g in groups] == [PASS]
