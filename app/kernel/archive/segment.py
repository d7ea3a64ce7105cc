"""The segment format: one Parquet file (zstd) per run of a partition's entries within a day.

One row per stream entry: `partition`, `entry_id`, `type`, `aggregate` (`kind:id`),
`aggregate_id`, `version`, `recorded_at` (the entry id's time, UTC), `data` (the stored event's
JSON, as the entry holds it), `traceparent` and `extra` (any other fields, as JSON), so that a
reader gives back exactly the fields a consumer would have read from the stream. Each file
also names, in its metadata, the entry before its first (`previous`): segments chain, so a
missing one shows. Paths are Hive-style and derive from the entries alone:
`partition=3/day=2026-12-07/<first>_<last>.parquet`.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import io
from collections.abc import Sequence
from typing import Any

import msgspec

from app.kernel.event_entries import event_head
from app.kernel.tracing import FIELD as TRACE_FIELD

Row = tuple[str, dict[str, str]]
"""A stream entry: (id, fields)."""


@functools.cache
def schema() -> Any:
    """The segments' Arrow schema (pyarrow is imported on first use: only the processes that
    write or read segments pay for it)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("partition", pa.int32()),
            ("entry_id", pa.string()),
            ("type", pa.string()),
            ("aggregate", pa.string()),
            ("aggregate_id", pa.string()),
            ("version", pa.int64()),
            ("recorded_at", pa.timestamp("ms", tz="UTC")),
            ("data", pa.string()),
            ("traceparent", pa.string()),
            ("extra", pa.string()),
        ]
    )


_READ = ["entry_id", "type", "aggregate", "version", "data", "traceparent", "extra"]
_HEAD = frozenset({"t", "a", "v", "e", TRACE_FIELD})
COMPRESSION = "zstd"


class Encoded(msgspec.Struct, frozen=True):
    """A segment ready to store: its bytes and what the manifest says of it."""

    path: str
    body: bytes
    first: str
    last: str
    previous: str
    count: int
    sha256: str
    day: str


def millis(entry_id: str) -> int:
    return int(entry_id.partition("-")[0])


def day_of(entry_id: str) -> str:
    """The UTC day an entry was recorded on (its id's milliseconds)."""
    moment = datetime.datetime.fromtimestamp(millis(entry_id) / 1000, datetime.UTC)
    return moment.strftime("%Y-%m-%d")


def partition_dir(partition: int) -> str:
    return f"partition={partition}"


def segment_path(partition: int, first: str, last: str) -> str:
    return f"{partition_dir(partition)}/day={day_of(first)}/{first}_{last}.parquet"


def encode(partition: int, rows: Sequence[Row], previous: str) -> Encoded:
    """A segment of `rows` (one day's, in stream order); `previous`: the entry before them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids, types, aggregates, aggregate_ids, versions, times = [], [], [], [], [], []
    data: list[str | None] = []
    traces: list[str | None] = []
    extras: list[str | None] = []
    for entry_id, fields in rows:
        ids.append(entry_id)
        times.append(millis(entry_id))
        if "t" in fields:
            kind, aggregate, version = fields["t"], fields["a"], int(fields["v"])
        elif "e" in fields:
            head = event_head(fields)
            kind, aggregate, version = head.type, head.aggregate, head.version
        else:
            kind, aggregate, version = "", "", 0
        types.append(kind)
        aggregates.append(aggregate)
        aggregate_ids.append(aggregate.partition(":")[2])
        versions.append(version)
        data.append(fields.get("e"))
        traces.append(fields.get(TRACE_FIELD))
        other = {k: v for k, v in fields.items() if k not in _HEAD}
        extras.append(msgspec.json.encode(other).decode() if other else None)
    table = pa.Table.from_arrays(
        [
            pa.array([partition] * len(ids), pa.int32()),
            pa.array(ids, pa.string()),
            pa.array(types, pa.string()),
            pa.array(aggregates, pa.string()),
            pa.array(aggregate_ids, pa.string()),
            pa.array(versions, pa.int64()),
            pa.array(times, pa.timestamp("ms", tz="UTC")),
            pa.array(data, pa.string()),
            pa.array(traces, pa.string()),
            pa.array(extras, pa.string()),
        ],
        schema=schema().with_metadata(
            {"partition": str(partition), "previous": previous, "first": ids[0], "last": ids[-1]}
        ),
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, compression=COMPRESSION)
    body = sink.getvalue()
    return Encoded(
        path=segment_path(partition, ids[0], ids[-1]),
        body=body,
        first=ids[0],
        last=ids[-1],
        previous=previous,
        count=len(ids),
        sha256=hashlib.sha256(body).hexdigest(),
        day=day_of(ids[0]),
    )


def decode(body: bytes) -> list[Row]:
    """The entries of a segment, with the fields the stream held."""
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(body), columns=_READ)
    columns = [table.column(name).to_pylist() for name in table.column_names]
    rows: list[Row] = []
    for entry_id, kind, aggregate, version, data, trace, extra in zip(*columns, strict=True):
        fields = {"t": kind, "a": aggregate, "v": str(version)} if kind else {}
        if data is not None:
            fields["e"] = data
        if trace is not None:
            fields[TRACE_FIELD] = trace
        if extra is not None:
            fields.update(msgspec.json.decode(extra, type=dict[str, str]))
        rows.append((entry_id, fields))
    return rows


def metadata(body: bytes) -> dict[str, str]:
    """What a segment file says of itself (`partition`, `first`, `last`, `previous`) and its
    row count (`count`), from its footer."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(io.BytesIO(body))
    pairs = (meta.metadata or {}).items()
    found = {k.decode(): v.decode() for k, v in pairs if k != b"ARROW:schema"}
    found["count"] = str(meta.num_rows)
    return found
