"""Read models from the archive and the stream: a shadow rebuild after the streams were
trimmed equals the live read model, and a new read model (its consumer group made after the
trim) is seeded from the archive. The real projector and archiver loops, on one server and on
the cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from app.domain.products import CreateProduct, RestockProduct
from app.kernel import keys
from app.kernel.archive.manifest import cached_summaries
from app.kernel.pass_groups import pass_group
from app.kernel.positions import parse_stream_id
from app.kernel.projection import Projection
from app.kernel.read_model_diff import Diff
from app.kernel.rebuild import ShadowRebuild
from app.kernel.redis_types import range_entries
from app.projections.catalog import CatalogProjection
from app.projections.low_stock import LowStockProjection
from app.queries.sales import low_stock
from app.services import Services
from tests.integration.conftest import ADMIN, make_settings
from tests.support.archive import running_archiver
from tests.support.kernel_catalog import running_projections
from tests.support.orders_helpers import wait_idle
from tests.support.polling import eventually

SKUS = [f"AR-{i:03d}" for i in range(24)]
RESTOCKED = SKUS[::3]
"""Products restocked above the low-stock threshold after they were created low."""


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        redis_url,
        ARCHIVE_URL=str(tmp_path / "archive"),
        ARCHIVE_SEGMENT_EVENTS="8",
        ARCHIVE_SEGMENT_SECONDS="0.05",
        LEASE_MS="2000",
    )


PASS = pass_group(keys.events(0))


async def _write_catalog(services: Services) -> None:
    for sku in SKUS:
        reply = await services.intake.submit(CreateProduct(sku, f"Item {sku}", 500, 2), ADMIN)
        assert reply.status_code == 200, reply
    for sku in RESTOCKED:
        await services.intake.submit(RestockProduct(sku, 10), ADMIN)


async def _trimmed(services: Services) -> bool:
    """Every partition archived something and its stream no longer starts at its first event."""
    summaries = await cached_summaries(services.write, services.settings.partitions)
    for partition, found in enumerate(summaries):
        if not found.entries:
            return False
        head = range_entries(await services.write.xrange(keys.events(partition), count=1))
        if head and parse_stream_id(head[0][0]) <= parse_stream_id(found.first):
            return False
    return True


async def _rebuilt_diff(
    services: Services, settings: Settings, projection: Projection[Any]
) -> tuple[Diff, int]:
    rebuild = ShadowRebuild(
        services.write,
        services.read,
        projection,
        settings.partitions,
        owner="test-rebuild",
        lease_ms=settings.lease_ms,
        chunk=7,
        archive=services.archive,
    )
    await rebuild.start()
    try:
        await rebuild.follow()
        diff = await rebuild.cut(swap=False)
    finally:
        await rebuild.abandon()
        await rebuild.close()
    return diff, rebuild.state.done


async def test_a_rebuild_over_archive_and_stream_equals_the_live_read_model(
    services: Services, settings: Settings
) -> None:
    await _write_catalog(services)
    groups = [(keys.events, PASS)]
    # as the projector runs: a partition archived and trimmed before its group was made
    # (the lease not yet taken) is read from the archive first
    async with running_projections(settings, ("catalog",), archive=True):
        async with running_archiver(
            services.write, services.archive_store, settings, retention_seconds=0.001
        ):
            await wait_idle(services, groups)
            await eventually(lambda: _trimmed(services), message="archived and trimmed")
        for sku in SKUS[:8]:  # and a few more in the streams only
            await services.intake.submit(RestockProduct(sku, 1), ADMIN)
        await wait_idle(services, groups)
        diff, replayed = await _rebuilt_diff(services, settings, CatalogProjection())
    assert diff.same, diff
    assert replayed == len(SKUS) + len(RESTOCKED) + 8  # every event, archived or not


async def test_a_new_read_model_is_built_from_the_archive_then_the_stream(
    services: Services, settings: Settings
) -> None:
    await _write_catalog(services)
    async with (
        running_projections(settings, ("catalog",)),
        running_archiver(services.write, services.archive_store, settings, retention_seconds=0.001),
    ):
        await wait_idle(services, [(keys.events, PASS)])
        await eventually(lambda: _trimmed(services), message="archived and trimmed")
    for partition in range(settings.partitions):
        assert not await services.read.exists(keys.checkpoint("low_stock", partition))
    # the pass's group is long past the start: the new read model joins it, built first
    async with running_projections(settings, ("low_stock",), owner="new", archive=True):
        await eventually(
            lambda: services.read.exists(
                *(keys.checkpoint("low_stock", p) for p in range(settings.partitions))
            ),
            until=lambda found: found == settings.partitions,
            message="low stock caught up in every partition",
        )
        await wait_idle(services, [(keys.events, PASS)])
        low = await low_stock(services.read_side)
        assert sorted(item.sku for item in low) == sorted(set(SKUS) - set(RESTOCKED))
        diff, _ = await _rebuilt_diff(
            services, settings, LowStockProjection(settings.low_stock_threshold)
        )
    assert diff.same, diff
