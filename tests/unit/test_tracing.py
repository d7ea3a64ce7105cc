"""kernel/tracing.py: traceparents, spans that cost nothing when nobody traces, spans that
continue a context taken off a stream, and batches linked to their items."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app.kernel import tracing
from tests.support.spans import spans_in_memory

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    with spans_in_memory(starts_traces=False) as exporter:
        yield exporter


def test_a_traceparent_round_trips_and_only_a_sampled_one_is_continued() -> None:
    context = tracing.decode(PARENT)
    assert context is not None and context.is_remote
    assert tracing.encode(context) == PARENT
    assert tracing.decode(PARENT[:-2] + "00") is None  # not sampled
    for bad in (
        "",
        "00-xyz",
        PARENT.replace("00-", "01-", 1),
        "00-" + "0" * 32 + "-b7ad6b7169203331-01",
    ):
        assert tracing.decode(bad) is None


def test_nothing_is_made_while_tracing_is_off() -> None:
    assert not tracing.enabled()
    assert tracing.current() == ""
    with tracing.span("decode") as span:
        assert span is None
    assert tracing.start("x", PARENT) is None
    assert tracing.processing("{p0}:events", "g", "1-0", PARENT) is None
    assert tracing.batch("b", [PARENT]) is None
    assert tracing.incoming("GET", PARENT) is None


def test_a_span_is_made_only_inside_a_recorded_one(exported: InMemorySpanExporter) -> None:
    with tracing.span("orphan") as span:
        assert span is None  # nothing current: no trace to add to
    request = tracing.incoming("POST", PARENT)
    assert request is not None
    with tracing.current_span(request), tracing.span("decode") as decode:
        assert decode is not None
        assert tracing.current() == tracing.of(decode)
    tracing.end(request)
    names = {s.name: s for s in exported.get_finished_spans()}
    assert set(names) == {"POST", "decode"}
    assert names["decode"].parent.span_id == names["POST"].context.span_id
    assert f"{names['POST'].parent.span_id:016x}" == PARENT.split("-")[2]
    assert names["POST"].kind is SpanKind.SERVER


def test_the_edge_starts_a_trace_of_its_own_only_when_spans_are_exported() -> None:
    provider = TracerProvider()
    tracing.enable(provider.get_tracer("test"), starts_traces=False)
    try:
        assert tracing.incoming("GET", "") is None
        tracing.enable(provider.get_tracer("test"), starts_traces=True)
        root = tracing.incoming("GET", "")
        assert root is not None and root.parent is None
        tracing.end(root)
    finally:
        tracing.disable()


def test_an_entry_s_span_continues_its_context_and_links_to_its_batch(
    exported: InMemorySpanExporter,
) -> None:
    other = "00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-01"
    batch = tracing.batch("process {p0}:events", [PARENT, "", other], {"n": 3})
    assert batch is not None
    with tracing.current_span(batch):
        item = tracing.processing("{p0}:events", "projection.catalog", "1000-0", PARENT)
    assert item is not None
    tracing.end(item)
    tracing.end(batch)
    finished = exported.get_finished_spans()
    entry = next(s for s in finished if s.parent is not None)
    whole = next(s for s in finished if s.parent is None)
    assert entry.kind is SpanKind.CONSUMER and whole.kind is SpanKind.CONSUMER
    # the batch links both traced entries; the entry's span links back to the batch
    assert {f"{link.context.trace_id:032x}" for link in whole.links} == {
        PARENT.split("-")[1],
        other.split("-")[1],
    }
    assert [link.context.span_id for link in entry.links] == [whole.context.span_id]
    assert f"{entry.context.trace_id:032x}" == PARENT.split("-")[1]
    assert entry.attributes["messaging.system"] == "redis"
    assert entry.attributes["messaging.consumer.group.name"] == "projection.catalog"
    assert entry.attributes[tracing.WAIT] > 0  # entry 1000-0 was written in 1970


def test_a_batch_with_no_traced_entry_makes_no_span(exported: InMemorySpanExporter) -> None:
    assert tracing.batch("b", ["", ""]) is None
    assert exported.get_finished_spans() == ()


def test_a_finished_span_from_timings_continues_its_parent(
    exported: InMemorySpanExporter,
) -> None:
    tracing.record("commit X", PARENT, 1_000, 3_000, kind=tracing.CLIENT, error="conflict")
    (span,) = exported.get_finished_spans()
    assert (span.start_time, span.end_time) == (1_000, 3_000)
    assert span.status.description == "conflict"
    assert f"{span.context.trace_id:032x}" == PARENT.split("-")[1]


def test_waited_is_the_time_since_the_entry_was_written() -> None:
    assert tracing.waited("1000-5", 3_500_000_000) == 2.5
    assert tracing.waited("5000-0", 1_000_000_000) == 0.0
    assert tracing.waited("garbage", 1) == 0.0
