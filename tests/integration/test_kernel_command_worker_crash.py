"""A command worker SIGKILLed mid-import is replaced; nothing is lost and nothing repeats.

The new worker takes the dead one's partitions over once their leases expire (LEASE_MS,
short here), and reads the entries the dead one left pending first.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings
from app.domain.catalog_import import ImportCatalog, ProductRow
from app.domain.products import CreateProduct, RestockProduct
from app.kernel import keys
from app.kernel.command_worker import GROUP
from app.kernel.intake import Reply
from app.services import Services
from tests.integration.conftest import ADMIN
from tests.support.kernel_catalog import event_counts, final_status, product_record, status_of
from tests.support.polling import eventually
from tests.support.processes import ProcessGroup
from tests.support.stores import store_env

ROWS = 5000
SHELF = [f"RST-{i}" for i in range(5)]


@pytest.fixture
def processes(log_dir: Path, settings: Settings) -> Iterator[ProcessGroup]:
    group = ProcessGroup(
        log_dir,
        {
            **store_env(settings.redis_url),
            "APP_ENV": "test",
            "PARTITIONS": str(settings.partitions),
            "LOG_LEVEL": "INFO",
            "LEASE_MS": "2000",
        },
    )
    try:
        yield group
    finally:
        group.stop_all()


async def _restock(
    services: Services, rng: random.Random, count: int, sent: Counter[str]
) -> list[Reply]:
    commands = [RestockProduct(rng.choice(SHELF), rng.randint(1, 9)) for _ in range(count)]
    replies = await asyncio.gather(
        *(services.intake.submit(c, ADMIN, prefer_async=True) for c in commands)
    )
    assert {r.status_code for r in replies} == {202}
    for command in commands:
        sent[command.sku] += command.quantity
    return list(replies)


async def _pending_by_consumer(services: Services) -> Counter[str]:
    owners: Counter[str] = Counter()
    for partition in range(services.settings.partitions):
        stream = keys.commands(partition)
        for item in await services.write.xpending_range(stream, GROUP, "-", "+", 1000):
            owners[item["consumer"]] += 1
    return owners


async def test_a_killed_command_worker_is_replaced_without_losing_or_repeating_anything(
    services: Services, processes: ProcessGroup
) -> None:
    """SIGKILL a `workers.commands` process half-way through a 5,000-row import with
    restocks in flight; a new process claims the abandoned entries and finishes: every row
    created once, every restock applied once, the import `succeeded` with full progress."""
    for sku in SHELF:
        assert (await services.intake.submit(CreateProduct(sku, "Shelf", 100), ADMIN)).status_code
    rng = random.Random(7)
    sent: Counter[str] = Counter()
    rows = [ProductRow(f"BIG-{i:05d}", f"Big {i}", 100 + i) for i in range(ROWS)]
    imported = await services.intake.submit(ImportCatalog(rows), ADMIN)
    assert imported.status_code == 202
    restocks = await _restock(services, rng, 100, sent)

    first = processes.start("commands-a", "workers.commands")

    async def progress() -> tuple[int, int]:
        status = await status_of(services, imported.command_id)
        if status is None or status.progress is None:
            return (0, 0)
        return (status.progress.done, status.progress.total)

    await eventually(
        progress,
        until=lambda p: 0 < p[0] < ROWS,
        interval=0.001,
        timeout=60,
        message="import under way",
    )
    restocks += await _restock(services, rng, 40, sent)  # in flight when the worker dies
    first.kill()
    done_at_kill = (await progress())[0]
    assert 0 < done_at_kill < ROWS
    abandoned = await _pending_by_consumer(services)
    assert abandoned, "the killed worker left pending entries"
    restocks += await _restock(services, rng, 100, sent)  # queued while no worker runs

    processes.start("commands-b", "workers.commands")
    status = await final_status(services, imported.command_id, within=90)
    finals = [await final_status(services, r.command_id, within=30) for r in restocks]

    assert status.status == "succeeded", status
    assert status.progress is not None
    assert (status.progress.done, status.progress.total) == (ROWS, ROWS)
    assert {s.status for s in finals} == {"succeeded"}
    counts = await event_counts(services.write, services.settings.partitions)
    created = {sku: n for (kind, sku), n in counts.items() if kind == "ProductCreated"}
    assert created == dict.fromkeys([r.sku for r in rows] + SHELF, 1)
    restocked = sum(n for (kind, _), n in counts.items() if kind == "ProductRestocked")
    assert restocked == len(restocks) == 240
    for sku in SHELF:
        version, product = await product_record(services, sku)
        assert product is not None and product.on_hand == sent[sku], sku
        assert version == 1 + counts[("ProductRestocked", sku)]
    await eventually(
        lambda: _pending_by_consumer(services),
        until=lambda owners: not owners,
        message="every entry acked",
    )
    assert await services.write.xlen(keys.dead_letters(GROUP)) == 0
