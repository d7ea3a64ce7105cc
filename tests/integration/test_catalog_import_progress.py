"""ImportCatalog reports progress as it goes and ends with exactly the rejected rows."""

from __future__ import annotations

import asyncio
import math
import time

from app.config import Settings
from app.domain.catalog_import import ImportCatalog, ProductRow
from app.domain.products import CreateProduct
from app.kernel import keys
from app.kernel.command_status import FINAL
from app.kernel.notices import read_status_notice
from app.kernel.partitions import partition_of_command
from app.processes.catalog_import import CHUNK
from app.services import Services
from tests.integration.conftest import ADMIN, running_workers
from tests.support.kernel_catalog import event_counts, final_status, product_record, status_of

ROWS = 3000
EXISTING = [f"OLD-{i}" for i in range(4)]
# row index → the sku it repeats: four existing products, and row 5 again in a later chunk
REPEATS = {
    7: EXISTING[0],
    250: EXISTING[1],
    1234: EXISTING[2],
    2999: EXISTING[3],
    2800: "IMP-00005",
}


def _rows(count: int, repeats: dict[int, str]) -> list[ProductRow]:
    return [
        ProductRow(repeats.get(i, f"IMP-{i:05d}"), f"Imported {i}", 100 + i, i % 7)
        for i in range(count)
    ]


async def _watch_progress(services: Services, command_id: str, seen: list[tuple[int, int]]) -> None:
    """Record every distinct progress value of a command until it finishes (within 120 s)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = await status_of(services, command_id)
        if status is not None and status.progress is not None:
            value = (status.progress.done, status.progress.total)
            if not seen or seen[-1] != value:
                seen.append(value)
        if status is not None and status.status in FINAL:
            return
        await asyncio.sleep(0.002)  # a sampling interval, not a wait for something
    raise AssertionError(f"{command_id} not final within 120 s; progress seen: {seen}")


async def _notices_for(services: Services, command_id: str) -> int:
    partition = partition_of_command(command_id, services.settings.partitions)
    assert partition is not None
    entries = await services.write.xrange(keys.status_notices(partition))
    notices = [read_status_notice(fields) for _, fields in entries]
    return sum(1 for notice in notices if notice is not None and notice.command_id == command_id)


async def test_an_import_with_duplicate_rows_reports_progress_and_lists_exactly_those_rows(
    services: Services, settings: Settings
) -> None:
    """3,000 rows, five of them repeating an existing sku: progress climbs to 3000/3000,
    the import ends `failed` with import_rows_rejected naming exactly those rows, and every
    other row was created once."""
    for sku in EXISTING:
        reply = await services.intake.submit(CreateProduct(sku, "Existing", 999, 1), ADMIN)
        assert reply.status_code == 200
    rows = _rows(ROWS, REPEATS)
    accepted = await services.intake.submit(ImportCatalog(rows), ADMIN)
    assert accepted.status_code == 202

    seen: list[tuple[int, int]] = []
    watcher = asyncio.create_task(_watch_progress(services, accepted.command_id, seen))
    async with running_workers(settings, ["commands"]):
        status = await final_status(services, accepted.command_id, within=60)
        await watcher

    assert status.status == "failed"
    assert status.progress is not None
    assert (status.progress.done, status.progress.total) == (ROWS, ROWS)
    assert status.error is not None and status.error.code == "import_rows_rejected"
    assert status.error.errors is not None
    assert [e.path for e in status.error.errors] == [f"$.products[{i}]" for i in sorted(REPEATS)]
    assert all(e.message.startswith("sku_exists") for e in status.error.errors)

    dones = [done for done, _ in seen]
    assert dones == sorted(dones), seen
    assert {total for _, total in seen} == {ROWS}
    assert any(0 < done < ROWS for done in dones), seen
    assert seen[-1] == (ROWS, ROWS)
    # accepted, processing, progress 0, one per chunk, finished
    assert await _notices_for(services, accepted.command_id) == 3 + math.ceil(ROWS / CHUNK) + 1

    counts = await event_counts(services.write, settings.partitions)
    created = {sku: n for (kind, sku), n in counts.items() if kind == "ProductCreated"}
    good = {row.sku for i, row in enumerate(rows) if i not in REPEATS}
    assert created == dict.fromkeys(good | set(EXISTING), 1)
    for index in (0, 5, 1500, 2998):
        _, product = await product_record(services, f"IMP-{index:05d}")
        assert product is not None
        assert (product.name, product.price_cents, product.on_hand) == (
            f"Imported {index}",
            100 + index,
            index % 7,
        )
    for sku in EXISTING:
        _, product = await product_record(services, sku)
        assert product is not None and (product.name, product.price_cents) == ("Existing", 999)


async def test_a_clean_import_succeeds_with_full_progress(
    services: Services, settings: Settings
) -> None:
    """An import with no bad row ends `succeeded`, progress total/total, no error."""
    rows = _rows(600, {})
    accepted = await services.intake.submit(ImportCatalog(rows), ADMIN)
    async with running_workers(settings, ["commands"]):
        status = await final_status(services, accepted.command_id, within=60)

    assert status.status == "succeeded" and status.error is None
    assert status.progress is not None
    assert (status.progress.done, status.progress.total) == (600, 600)
    assert [s.name for s in status.steps] == ["accepted", "processing", "succeeded"]
    counts = await event_counts(services.write, settings.partitions)
    assert sum(n for (kind, _), n in counts.items() if kind == "ProductCreated") == 600
