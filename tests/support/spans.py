"""Spans kept in memory: tracing switched on in this process for the length of a test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.kernel import tracing


@contextmanager
def spans_in_memory(*, starts_traces: bool) -> Iterator[InMemorySpanExporter]:
    """`starts_traces`: every piece of work is traced, not only what brings a traceparent."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider.get_tracer("test"), starts_traces=starts_traces)
    try:
        yield exporter
    finally:
        tracing.disable()
        provider.shutdown()
