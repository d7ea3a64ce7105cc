"""The command queue: poison entries are dead-lettered and acked; a dead owner's entries run."""

from __future__ import annotations

import msgspec
import pytest

from app.config import Settings
from app.domain.catalog_import import ImportCatalog, ProductRow
from app.domain.products import CreateProduct, RestockProduct
from app.kernel import keys
from app.kernel.command_worker import GROUP
from app.kernel.consumer import DeadLetter, ensure_group
from app.kernel.partitions import partition_of
from app.services import Services
from tests.integration.conftest import ADMIN, running_workers
from tests.support.kernel_catalog import final_status, pending, product_record
from tests.support.polling import eventually

_letter = msgspec.json.Decoder(DeadLetter)


async def _dead_letters(services: Services) -> list[DeadLetter]:
    entries = await services.write.xrange(keys.dead_letters(GROUP))
    return [_letter.decode(fields["e"]) for _, fields in entries]


async def _all_pending(services: Services) -> int:
    streams = [keys.commands(p) for p in range(services.settings.partitions)]
    return sum([await pending(services.write, s, GROUP) for s in streams])


async def test_an_undecodable_envelope_is_dead_lettered_and_acked(
    services: Services, settings: Settings
) -> None:
    """Garbage on the commands stream: one dead letter, acked, counted in the health hash,
    and the command queued after it still runs."""
    assert (await services.intake.submit(CreateProduct("DLQ-1", "Mug", 100), ADMIN)).status_code
    stream = keys.commands(2)
    garbage = await services.write.xadd(stream, {"c": "{not an envelope"})
    later = await services.intake.submit(RestockProduct("DLQ-1", 3), ADMIN, prefer_async=True)

    async with running_workers(settings, ["commands"]):
        status = await final_status(services, later.command_id)
        letters = await eventually(
            lambda: _dead_letters(services), until=bool, message="dead letter written"
        )
        await eventually(
            lambda: _all_pending(services), until=lambda n: n == 0, message="all acked"
        )

    assert status.status == "succeeded"
    [letter] = letters
    assert (letter.group, letter.stream, letter.entry_id) == (GROUP, stream, garbage)
    assert letter.fields == {"c": "{not an envelope"}
    assert letter.error.startswith("undecodable")
    health = await services.write.hgetall(keys.consumer_health(GROUP))
    assert health["dead_letters"] == "1" and health["last_error"].startswith("undecodable")
    _, product = await product_record(services, "DLQ-1")
    assert product is not None and product.on_hand == 3


async def test_an_entry_without_an_envelope_is_acked_without_a_dead_letter(
    services: Services, settings: Settings
) -> None:
    """A foreign entry (no `c` field) is acked and otherwise ignored."""
    await services.write.xadd(keys.commands(1), {"something": "else"})
    marker = await services.intake.submit(
        CreateProduct("DLQ-2", "Mug", 100), ADMIN, prefer_async=True
    )
    async with running_workers(settings, ["commands"]):
        await final_status(services, marker.command_id)
        await eventually(
            lambda: _all_pending(services), until=lambda n: n == 0, message="all acked"
        )
    assert await _dead_letters(services) == []


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"command_id": "no-partition-here"}, id="id-without-partition"),
        pytest.param({"command_id": "abc-63"}, id="id-with-a-partition-out-of-range"),
        pytest.param({"type": "LaunchRocket"}, id="unknown-command-type"),
    ],
)
async def test_an_envelope_that_cannot_be_routed_is_dead_lettered_and_acked(
    services: Services, settings: Settings, change: dict[str, str]
) -> None:
    """A well-formed envelope naming no partition or no known command cannot be run: it is
    dead-lettered and acked like an undecodable entry."""
    envelope = services.bus.envelope(RestockProduct("DLQ-3", 1), ADMIN)
    bad = msgspec.structs.replace(envelope, **change)
    await services.write.xadd(keys.commands(0), {"c": msgspec.json.encode(bad).decode()})

    async with running_workers(settings, ["commands"]):
        letters = await eventually(
            lambda: _dead_letters(services), until=bool, message="dead letter", timeout=5
        )
    assert [letter.fields["c"] for letter in letters] == [msgspec.json.encode(bad).decode()]
    assert letters[0].error.startswith("not a command")
    assert await _all_pending(services) == 0


async def _abandon(services: Services, partition: int) -> None:
    """Leave a partition's entries pending, read by an owner that died before it acked."""
    stream = keys.commands(partition)
    await services.write.xreadgroup(GROUP, f"p{partition}", {stream: ">"}, count=1000)


async def test_abandoned_entries_with_the_same_id_in_two_partitions_are_both_run(
    services: Services, settings: Settings
) -> None:
    """A dead worker left a long import on one partition and a restock on another, both
    with the same entry id: the partitions' next owner reads them first and runs both."""
    partitions = settings.partitions
    rows = [ProductRow(f"CLM-{i:04d}", "Row", 100) for i in range(2000)]
    importing = services.bus.envelope(ImportCatalog(rows), ADMIN)
    while services.bus.partition(importing) == partitions - 1:
        importing = services.bus.envelope(ImportCatalog(rows), ADMIN)
    first = services.bus.partition(importing)
    sku = next(
        s for s in (f"CLM-SKU-{i}" for i in range(100)) if partition_of(s, partitions) > first
    )
    assert (await services.intake.submit(CreateProduct(sku, "Mug", 100), ADMIN)).status_code
    restock = services.bus.envelope(RestockProduct(sku, 5), ADMIN)
    second = services.bus.partition(restock)
    for partition in range(partitions):
        await ensure_group(services.write, keys.commands(partition), GROUP)
    same_id = "1000-1"
    for partition, envelope in ((first, importing), (second, restock)):
        stream = keys.commands(partition)
        await services.write.xadd(stream, {"c": msgspec.json.encode(envelope).decode()}, id=same_id)
        await _abandon(services, partition)

    async with running_workers(settings, ["commands"]):
        restocked = await final_status(services, restock.command_id, within=15)
        imported = await final_status(services, importing.command_id, within=15)

    assert (restocked.status, imported.status) == ("succeeded", "succeeded")
    _, product = await product_record(services, sku)
    assert product is not None and product.on_hand == 5
