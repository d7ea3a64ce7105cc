"""The archive in an S3 bucket: moto's S3 server, started by the test module on a free port
and stopped after it, with the archiver loop, the reader and verify going through it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings
from app.kernel import keys
from app.kernel.archive.manifest import load_manifest
from app.kernel.archive.reader import ArchiveReader
from app.kernel.archive.store import ArchiveStore, open_store
from app.kernel.archive.verify import verify_partition
from app.services import Services
from tests.integration.conftest import make_settings
from tests.support.archive import running_archiver, stream_rows, write_events
from tests.support.polling import eventually
from tests.support.s3_server import S3Server, running_s3

BUCKET = "storefront-archive"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with running_s3() as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture
def store(s3: S3Server) -> ArchiveStore:
    return open_store(f"s3://{BUCKET}/events-{uuid.uuid4().hex[:8]}", s3.env())


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        redis_url,
        ARCHIVE_URL=str(tmp_path / "unused"),
        ARCHIVE_SEGMENT_EVENTS="6",
        ARCHIVE_SEGMENT_SECONDS="0.05",
    )


async def test_segments_and_manifests_go_to_the_bucket_and_read_back(
    services: Services, settings: Settings, store: ArchiveStore
) -> None:
    for partition in range(settings.partitions):
        await write_events(services.write, partition, 14, aggregate=f"thing:S{partition}")
    before = {p: await stream_rows(services.write, p) for p in range(settings.partitions)}
    async with running_archiver(services.write, store, settings, retention_seconds=0.001):

        async def lengths() -> list[int]:
            return [await services.write.xlen(keys.events(p)) for p in range(settings.partitions)]

        await eventually(lengths, until=lambda n: set(n) == {1}, message="archived, trimmed")
    assert store.url.startswith(f"s3://{BUCKET}/events-")
    reader = ArchiveReader(services.write, store, keys.events)
    for partition in range(settings.partitions):
        manifest = load_manifest(store, partition)
        assert [s.count for s in manifest.segments] == [6, 6, 2]
        # (a listing is in name order: `…-10_…` before `…-4_…`; the manifest has stream order)
        assert [f for f in store.files(f"partition={partition}") if f.endswith(".parquet")] == (
            sorted(s.path for s in manifest.segments)
        )
        again = [(e.id, e.fields) async for e in reader.entries(partition)]
        assert again == before[partition]
        check = await verify_partition(services.write, store, partition, keys.events(partition))
        assert check.problems == [] and check.entries == 14
