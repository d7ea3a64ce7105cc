"""The archive's pieces without Redis: the segment format, paths, the manifest, ids, the
local store, the settings."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import msgspec
import pyarrow.parquet as pq
import pytest

from app.config import ConfigError, load_settings
from app.kernel.archive.groups import MAX_SEQUENCE, before, following
from app.kernel.archive.manifest import START, Manifest
from app.kernel.archive.segment import day_of, decode, encode, metadata, segment_path
from app.kernel.archive.status import duration, size
from app.kernel.archive.store import open_store

DAY = 1796601600000  # 2026-12-07T00:00:00Z
ROWS = [
    (f"{DAY + 1000}-0", {"t": "Made", "a": "thing:A", "v": "1", "e": '{"x":1}'}),
    (
        f"{DAY + 1000}-1",
        {"t": "Moved", "a": "thing:A", "v": "2", "e": '{"x":"é"}', "tp": "00-ab-cd-01"},
    ),
    (f"{DAY + 2000}-0", {"t": "Made", "a": "thing:B", "v": "1", "e": "{}", "z": "other"}),
]


def test_a_segment_gives_back_every_field_of_every_entry() -> None:
    made = encode(3, ROWS, previous="12-0")
    assert decode(made.body) == ROWS
    assert (made.first, made.last, made.count, made.previous) == (
        ROWS[0][0],
        ROWS[-1][0],
        3,
        "12-0",
    )
    assert made.sha256 == hashlib.sha256(made.body).hexdigest()
    assert made.path == f"partition=3/day=2026-12-07/{ROWS[0][0]}_{ROWS[-1][0]}.parquet"
    assert metadata(made.body) == {
        "partition": "3",
        "previous": "12-0",
        "first": ROWS[0][0],
        "last": ROWS[-1][0],
        "count": "3",
    }


def test_a_segment_is_parquet_with_zstd_and_typed_columns(tmp_path: Path) -> None:
    made = encode(0, ROWS, previous=START)
    file = tmp_path / "s.parquet"
    file.write_bytes(made.body)
    table = pq.read_table(file)
    assert table.column("aggregate_id").to_pylist() == ["A", "A", "B"]
    assert table.column("version").to_pylist() == [1, 2, 1]
    assert table.column("traceparent").to_pylist() == [None, "00-ab-cd-01", None]
    assert msgspec.json.decode(table.column("extra").to_pylist()[2]) == {"z": "other"}
    assert str(table.column("recorded_at").type) == "timestamp[ms, tz=UTC]"
    column = pq.ParquetFile(file).metadata.row_group(0).column(0)
    assert column.compression == "ZSTD"


def test_an_entry_from_before_the_head_fields_is_archived_by_its_stored_event() -> None:
    stored = '{"type":"Old","aggregate":"thing","aggregate_id":"C","version":4,"command_id":"c",'
    stored += '"at":1.0,"data":{}}'
    made = encode(1, [("5-0", {"e": stored})], previous=START)
    table = pq.read_table(io.BytesIO(made.body))
    assert table.column("type").to_pylist() == ["Old"]
    assert decode(made.body) == [("5-0", {"t": "Old", "a": "thing:C", "v": "4", "e": stored})]


def test_days_and_paths_come_from_the_entry_ids() -> None:
    assert day_of(f"{DAY - 1}-0") == "2026-12-06"
    assert day_of(f"{DAY}-5") == "2026-12-07"
    assert segment_path(12, "1-0", "2-3") == "partition=12/day=1970-01-01/1-0_2-3.parquet"


def test_ids_before_and_after() -> None:
    assert before("5-3") == "5-2"
    assert before("5-0") == f"4-{MAX_SEQUENCE}"
    assert before("0-0") == "0-0"
    assert following("5-3") == "5-4"
    assert following(f"4-{MAX_SEQUENCE}") == "5-0"


def test_the_manifest_finds_the_segments_after_a_cursor() -> None:
    manifest = Manifest(partition=0)
    for first, last, previous in (
        ("1-0", "3-0", START),
        ("4-0", "9-1", "3-0"),
        ("10-0", "12-0", "9-1"),
    ):
        rows = [(first, ROWS[0][1]), (last, ROWS[0][1])]
        manifest = manifest.appended(encode(0, rows, previous))
    assert (manifest.first, manifest.last, manifest.entries) == ("1-0", "12-0", 6)
    assert [s.first for s in manifest.after(START)] == ["1-0", "4-0", "10-0"]
    assert [s.first for s in manifest.after("3-0")] == ["4-0", "10-0"]
    assert [s.first for s in manifest.after("5-0")] == ["4-0", "10-0"]
    assert manifest.after("12-0") == []
    assert Manifest(partition=1).last == START


def test_the_local_store_writes_whole_files_and_lists_them(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/arch")
    assert store.local and store.url == (tmp_path / "arch").as_uri()
    store.write("partition=0/day=2026-12-07/a.parquet", b"one")
    store.write("partition=0/day=2026-12-08/b.parquet", b"two")
    store.write("partition=0/_manifest.json", b"{}")
    store.write("partition=0/_manifest.json", b"{ }")  # replaced whole
    assert store.read("partition=0/_manifest.json") == b"{ }"
    assert store.read("partition=0/missing.json") is None
    assert store.files("partition=0") == [
        "partition=0/_manifest.json",
        "partition=0/day=2026-12-07/a.parquet",
        "partition=0/day=2026-12-08/b.parquet",
    ]
    assert store.folders("partition=0") == ["day=2026-12-07", "day=2026-12-08"]
    assert store.files("partition=9") == []
    store.delete("partition=0/day=2026-12-07/a.parquet")
    store.delete("partition=0/day=2026-12-07/a.parquet")  # gone already: nothing to do
    assert not list((tmp_path / "arch").rglob("*.tmp"))
    assert open_store(str(tmp_path / "plain")).url == (tmp_path / "plain").as_uri()


def test_archive_urls_that_are_not_a_directory_or_a_bucket_are_refused() -> None:
    with pytest.raises(ValueError, match="ARCHIVE_URL"):
        open_store("ftp://host/dir")
    with pytest.raises(ValueError, match="bucket"):
        open_store("s3:///prefix", {})
    s3 = open_store("s3://bucket/some/prefix", {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert (s3.local, s3.url) == (False, "s3://bucket/some/prefix")


def test_the_archive_settings_have_defaults_and_bounds() -> None:
    settings = load_settings({})
    assert settings.archive_url == "var/archive"
    assert settings.event_retention_seconds == 86400
    assert (settings.archive_segment_events, settings.archive_segment_seconds) == (50_000, 600.0)
    assert load_settings({"EVENT_RETENTION_SECONDS": "0"}).event_retention_seconds == 0
    for bad in (
        {"EVENT_RETENTION_SECONDS": "-1"},
        {"ARCHIVE_SEGMENT_EVENTS": "0"},
        {"ARCHIVE_SEGMENT_SECONDS": "0"},
        {"EVENT_RETENTION_SECONDS": "1.5"},
    ):
        with pytest.raises(ConfigError):
            load_settings(bad)


def test_ages_and_sizes_read_as_people_read_them() -> None:
    assert [duration(s) for s in (None, 4.2, 150, 7200, 3 * 86400)] == [
        "-",
        "4 s",
        "2.5 min",
        "2.0 h",
        "3.0 d",
    ]
    assert [size(n) for n in (12, 2048, 5 * 1024**2, 3 * 1024**3)] == [
        "12 B",
        "2.0 KiB",
        "5.0 MiB",
        "3.0 GiB",
    ]
