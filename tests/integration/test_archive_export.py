"""What an operator does with the archive: the README's DuckDB query, exactly as printed,
over an archive this test made; `storefront events` (archive then stream, JSON lines);
`storefront archive verify` and `status`."""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from app.config import Settings
from app.kernel import keys
from app.kernel.archive.partition import PartitionArchive
from app.kernel.archive.segment import day_of
from app.services import Services
from tests.integration.conftest import make_settings
from tests.support.archive import stream_rows, write_events
from tests.support.processes import ROOT

README = ROOT / "README.md"


@pytest.fixture
def settings(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The default ARCHIVE_URL (`var/archive`), under a directory of the test's own."""
    monkeypatch.chdir(tmp_path)
    return make_settings(redis_url)


async def _archive(services: Services, partition: int) -> None:
    archive = PartitionArchive(
        services.write,
        services.archive_store,
        partition,
        keys.events(partition),
        segment_events=5,
        segment_seconds=0.0,
        retention_ms=1,
    )
    await archive.open()
    while await archive.step(lambda: True):
        pass


def readme_query() -> str:
    found = re.search(r"```sql\n(.*?read_parquet.*?)```", README.read_text(), re.DOTALL)
    assert found is not None, "the README shows no DuckDB query over the archive"
    return found.group(1)


async def test_the_readme_query_counts_events_per_type_per_day(services: Services) -> None:
    await write_events(services.write, 0, 9)
    await write_events(services.write, 1, 7, aggregate="other:B")
    await services.write.xadd(keys.events(2), {"t": "Other", "a": "x:1", "v": "1", "e": "{}"})
    expected: collections.Counter[tuple[str, str]] = collections.Counter()
    for partition in range(3):
        for entry_id, fields in await stream_rows(services.write, partition):
            expected[(day_of(entry_id), fields["t"])] += 1
        await _archive(services, partition)
    assert services.archive_store.url.endswith("/var/archive")
    rows = duckdb.sql(readme_query()).fetchall()
    assert {(str(day), kind): count for day, kind, count in rows} == dict(expected)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_events_export_archive_then_stream_as_json_lines(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    for partition in range(settings.partitions):
        await write_events(services.write, partition, 8, aggregate=f"thing:E{partition}")
    before = {p: await stream_rows(services.write, p) for p in range(settings.partitions)}
    for partition in range(settings.partitions):
        await _archive(services, partition)
        await write_events(services.write, partition, 2, aggregate=f"thing:E{partition}", start=9)
    env = {"REDIS_URL": settings.redis_url, "ARCHIVE_URL": str(tmp_path / "var" / "archive")}
    done = _cli("events", env=env)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(x["partition"], x["version"]) for x in lines] == [
        (p, v) for p in range(settings.partitions) for v in range(1, 11)
    ]
    first = lines[0]
    fields = before[0][0][1]
    assert first["id"] == before[0][0][0]
    assert (first["type"], first["aggregate"]) == (fields["t"], fields["a"])
    assert first["event"] == json.loads(fields["e"])
    assert lines[2]["traceparent"] == before[0][2][1]["tp"]

    one = _cli("events", "--partition", "2", "--after", before[2][5][0], env=env)
    assert [json.loads(x)["version"] for x in one.stdout.splitlines()] == [7, 8, 9, 10]

    verified = _cli("archive", "verify", env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "verified: every segment intact and contiguous" in verified.stdout
    status = _cli("archive", "status", env=env)
    assert status.returncode == 0, status.stderr
    assert "redis master 0:" in status.stdout
    store = services.archive_store
    segment = next(f for f in store.files("partition=1") if f.endswith(".parquet"))
    body = store.read(segment)
    assert body is not None
    store.write(segment, body[:-10] + b"0123456789")
    broken = _cli("archive", "verify", env=env)
    assert broken.returncode == 1
    assert "partition 1: " in broken.stdout and "checksum" in broken.stdout
