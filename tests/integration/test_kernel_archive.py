"""The event archive on a real Redis (and a 3-master cluster): segments and their manifest,
the trim and what it must keep, one sequence across archive and stream, verification."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from app.config import Settings
from app.kernel import keys
from app.kernel.archive.holds import ArchiveHolds
from app.kernel.archive.manifest import START, cached_summaries, save_manifest
from app.kernel.archive.partition import PartitionArchive
from app.kernel.archive.reader import ArchiveReader
from app.kernel.archive.verify import verify_partition
from app.kernel.redis_types import range_entries
from app.services import Services
from tests.integration.conftest import make_settings
from tests.support.archive import manifest_of, running_archiver, stream_rows, write_events
from tests.support.polling import eventually


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        redis_url,
        ARCHIVE_URL=str(tmp_path / "archive"),
        ARCHIVE_SEGMENT_EVENTS="10",
        ARCHIVE_SEGMENT_SECONDS="0.1",
    )


def archive_of(
    services: Services,
    partition: int,
    *,
    events: int = 10,
    seconds: float = 0.0,
    retention_ms: int = 1,
) -> PartitionArchive:
    """One partition's archiving, stepped by the test (seconds 0: every wait is due)."""
    return PartitionArchive(
        services.write,
        services.archive_store,
        partition,
        keys.events(partition),
        segment_events=events,
        segment_seconds=seconds,
        retention_ms=retention_ms,
    )


async def settle(archive: PartitionArchive) -> None:
    """Step until a step finds nothing to do."""
    await archive.open()
    for _ in range(100):
        if not await archive.step(lambda: True):
            return
    raise AssertionError("the archive never settled")


async def test_acknowledged_events_become_segments_and_the_stream_is_trimmed(
    services: Services, settings: Settings
) -> None:
    written = {
        p: await write_events(services.write, p, 25, aggregate=f"thing:P{p}") for p in range(4)
    }
    before = {p: await stream_rows(services.write, p) for p in range(4)}
    async with running_archiver(
        services.write, services.archive_store, settings, retention_seconds=0.001
    ) as archiver:

        async def lengths() -> list[int]:
            return [await services.write.xlen(keys.events(p)) for p in range(4)]

        await eventually(lengths, until=lambda n: n == [1, 1, 1, 1], message="streams trimmed")
        assert archiver.archived == 100
        assert archiver.owned == [0, 1, 2, 3] and archiver.stalls() == []
    for partition in range(4):
        manifest = await manifest_of(services.archive_store, partition)
        assert [s.count for s in manifest.segments] == [10, 10, 5]
        assert manifest.segments[0].previous == START
        assert [s.previous for s in manifest.segments[1:]] == [
            s.last for s in manifest.segments[:-1]
        ]
        assert manifest.last == written[partition][-1]
        reader = ArchiveReader(services.write, services.archive_store, keys.events)
        again = [(e.id, e.fields) for e in [e async for e in reader.entries(partition)]]
        assert again == before[partition]  # every field as the stream held it
    summaries = await cached_summaries(services.write, 4)
    assert [(s.entries, s.segments) for s in summaries] == [(25, 3)] * 4
    first = manifest.segments[0]
    table = pq.read_table(str(Path(settings.archive_url) / first.path))
    assert table.num_rows == 10
    assert {
        "partition",
        "entry_id",
        "type",
        "aggregate_id",
        "version",
        "recorded_at",
        "data",
    } <= set(table.column_names)
    assert str(table.schema.field("recorded_at").type) == "timestamp[ms, tz=UTC]"
    assert first.path == f"partition=3/day={first.day}/{first.first}_{first.last}.parquet"


async def test_nothing_is_trimmed_before_its_retention(services: Services) -> None:
    await write_events(services.write, 0, 12)
    archive = archive_of(services, 0, retention_ms=3_600_000)
    await settle(archive)
    assert archive.manifest.entries == 12
    assert await services.write.xlen(keys.events(0)) == 12


async def test_a_pending_entry_and_what_follows_it_are_neither_archived_nor_trimmed(
    services: Services,
) -> None:
    ids = await write_events(services.write, 1, 12)
    stream = keys.events(1)
    await services.write.xgroup_create(stream, "slow", id="0")
    await services.write.xreadgroup("slow", "c", {stream: ">"}, count=10)
    await services.write.xack(stream, "slow", *ids[:5])
    archive = archive_of(services, 1, events=3)
    await settle(archive)
    assert archive.manifest.last == ids[4]
    assert range_entries(await services.write.xrange(stream))[0][0] == ids[5]
    await services.write.xack(stream, "slow", *ids[5:10])
    await settle(archive)
    assert archive.manifest.last == ids[9]  # delivered and acknowledged; 10, 11 not delivered
    assert [i for i, _ in range_entries(await services.write.xrange(stream))] == ids[10:]


async def test_a_lagging_group_keeps_what_it_has_not_read(services: Services) -> None:
    ids = await write_events(services.write, 2, 8)
    await services.write.xgroup_create(keys.events(2), "lagging", id=ids[2])
    archive = archive_of(services, 2)
    await settle(archive)
    assert archive.manifest.last == ids[2]
    assert range_entries(await services.write.xrange(keys.events(2)))[0][0] == ids[3]


async def test_a_hold_keeps_its_entries_until_released_and_expires_with_its_holder(
    services: Services,
) -> None:
    ids = await write_events(services.write, 0, 9)
    rebuild = ArchiveHolds(services.write, "rebuild.projection.x")
    await rebuild.hold(0, ids[3])
    archive = archive_of(services, 0)
    await settle(archive)
    assert archive.manifest.last == ids[-1]  # archived all the same
    assert range_entries(await services.write.xrange(keys.events(0)))[0][0] == ids[3]
    await rebuild.release([0])
    await settle(archive)
    assert await services.write.xlen(keys.events(0)) == 1  # a stream keeps its last entry

    more = await write_events(services.write, 0, 4, start=10)
    audit = ArchiveHolds(services.write, "audit.x")
    await audit.hold(0, more[1])
    await settle(archive)
    assert range_entries(await services.write.xrange(keys.events(0)))[0][0] == more[1]
    # its holder died and never renewed it: the hold's time ran out (by the server's clock)
    await services.write.hset(keys.archive_holds(0), "audit.x", f"1 {more[1]}")
    await settle(archive)
    assert await services.write.xlen(keys.events(0)) == 1
    assert await services.write.hlen(keys.archive_holds(0)) == 0


async def test_the_reader_continues_from_the_archive_when_a_trim_overtook_it(
    services: Services,
) -> None:
    ids = await write_events(services.write, 3, 30)
    reader = ArchiveReader(services.write, services.archive_store, keys.events)
    first = await reader.read(3, START, "+", 10)  # from the stream: nothing archived yet
    assert [i for i, _ in first] == ids[:10]
    await settle(archive_of(services, 3, events=100))  # archived, and trimmed to the last
    assert await services.write.xlen(keys.events(3)) == 1
    ids += await write_events(services.write, 3, 5, start=31)
    rest = await reader.read(3, first[-1][0], "+", 100)
    assert [i for i, _ in rest] == ids[10:]
    assert await reader.read(3, ids[-1], "+", 100) == []
    assert [i for i, _ in await reader.read(3, ids[5], ids[12], 100)] == ids[6:13]


async def test_a_reader_during_archiving_and_trimming_gets_every_entry_once_in_order(
    services: Services, settings: Settings
) -> None:
    total = 400
    written: list[str] = []

    async def write() -> None:
        for start in range(1, total + 1, 10):
            written.extend(await write_events(services.write, 0, 10, start=start))

    reader = ArchiveReader(services.write, services.archive_store, keys.events)
    got: list[str] = []
    fast = make_settings(
        settings.redis_url, ARCHIVE_SEGMENT_EVENTS="7", ARCHIVE_SEGMENT_SECONDS="0.02"
    )
    async with running_archiver(
        services.write, services.archive_store, fast, retention_seconds=0.001
    ):
        writer = asyncio.create_task(write())
        deadline = time.monotonic() + 60
        cursor = START
        while len(got) < total and time.monotonic() < deadline:
            rows = await reader.read(0, cursor, "+", 5)
            got += [entry_id for entry_id, _ in rows]
            cursor = got[-1] if got else START
            if not rows:
                await asyncio.sleep(0.005)  # caught up with the writer: poll again
        await writer
    assert got == written
    manifest = await manifest_of(services.archive_store, 0)
    assert manifest.entries > 0
    assert await services.write.xlen(keys.events(0)) < total  # the trim did race the reader


async def test_verify_finds_a_corrupted_segment_and_a_gap(services: Services) -> None:
    await write_events(services.write, 1, 30)
    archive = archive_of(services, 1, retention_ms=0)
    await settle(archive)
    store = services.archive_store
    check = await verify_partition(services.write, store, 1, keys.events(1))
    assert (check.segments, check.entries, check.problems) == (3, 30, [])

    middle = archive.manifest.segments[1]
    body = store.read(middle.path)
    assert body is not None
    store.write(middle.path, body[:100] + bytes([body[100] ^ 1]) + body[101:])
    check = await verify_partition(services.write, store, 1, keys.events(1))
    assert len(check.problems) == 1 and "checksum" in check.problems[0], check.problems

    store.write(middle.path, body)
    gapped = archive.manifest
    gapped.segments = [gapped.segments[0], gapped.segments[2]]
    save_manifest(store, gapped)
    check = await verify_partition(services.write, store, 1, keys.events(1))
    assert len(check.problems) == 1 and check.problems[0].startswith("gap before"), check.problems

    await write_events(services.write, 1, 1, start=31)
    await services.write.xtrim(keys.events(1), maxlen=0)  # an entry the archive never had
    check = await verify_partition(services.write, store, 1, keys.events(1))
    assert any("neither archived nor in the stream" in p for p in check.problems), check.problems


async def test_a_segment_written_before_a_crash_is_adopted_and_a_stray_one_deleted(
    services: Services,
) -> None:
    ids = await write_events(services.write, 2, 20)
    archive = archive_of(services, 2, retention_ms=0)
    await settle(archive)
    store = services.archive_store
    whole = archive.manifest
    crashed = type(whole)(partition=2, segments=whole.segments[:1])
    save_manifest(store, crashed)  # the crash: the second segment is written, not named
    stray = f"partition=2/day={whole.segments[0].day}/{ids[3]}_{ids[6]}.parquet"
    store.write(stray, b"not a segment")
    again = archive_of(services, 2, retention_ms=0)
    await again.open()
    assert again.manifest.segments == whole.segments
    assert store.read(stray) is None
    assert (await manifest_of(store, 2)).segments == whole.segments
