"""OpenTelemetry for one process: its provider, where its spans go, and when traces start.

* `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set: spans go to
  that OTLP/HTTP receiver (Jaeger, Tempo, a collector), batched in a background thread, and
  the web starts a trace for every request, sampled as `OTEL_TRACES_SAMPLER` says (parent-
  based, always on, by default). `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` are read
  by the SDK as usual; the service name defaults to `storefront-<process kind>`.
* `TRACE_STORE_TRACES` > 0 (the default): the spans of traced commands are also kept in Redis
  for the waterfall on each command's page (span_store.py). Without an OTLP endpoint a trace
  starts only where a request brings a sampled `traceparent` (the pages send one with each
  form they post), so a process that is not asked to trace makes no span at all.
* Neither: no provider; kernel/tracing stays off.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping, Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from redis.asyncio import Redis

from app.config import Settings
from app.kernel import tracing
from app.observability.span_store import SpanStore, SpanStoreProcessor, stored, write_spans

ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def exporting(env: Mapping[str, str]) -> bool:
    """Spans are sent to an OTLP receiver (and not switched off by the SDK's own settings)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(env.get(name, "").strip() for name in ENDPOINTS)


def resource(kind: str, env: Mapping[str, str]) -> Resource:
    """`service.name` storefront-<kind> unless OTEL_SERVICE_NAME says otherwise."""
    return Resource.create(
        {
            "service.name": env.get("OTEL_SERVICE_NAME") or f"storefront-{kind}",
            "service.namespace": "storefront",
            "service.instance.id": f"{socket.gethostname()}-{os.getpid()}",
        }
    )


class Telemetry:
    """What one process set up; `run` writes the span store until stopped."""

    def __init__(
        self,
        provider: TracerProvider | None,
        processors: Sequence[SpanProcessor] = (),
        store: SpanStore | None = None,
        kept: SpanStoreProcessor | None = None,
    ) -> None:
        self.provider = provider
        self._processors = list(processors)
        self._store = store
        self._kept = kept

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def emit(self, spans: Sequence[ReadableSpan]) -> None:
        """Spans made outside this process's tracer (a page's click and swaps), as finished:
        to the exporter, and to the span store as they are (their trace is a command's)."""
        for processor in self._processors:
            if processor is self._kept:
                self._kept.add(spans)
            else:
                for span in spans:
                    processor.on_end(span)

    async def flush(self) -> None:
        """Write what the span store holds now (instead of at its next turn)."""
        if self._store is not None and self._kept is not None:
            ready = self._kept.take()
            if ready:
                await self._store.write([stored(span) for span in ready])

    async def run(self, stop: asyncio.Event) -> None:
        if self._store is not None and self._kept is not None:
            await write_spans(self._kept, self._store, stop)

    def shutdown(self) -> None:
        if self.provider is not None:
            tracing.disable()
            self.provider.shutdown()


def configure_telemetry(
    settings: Settings, kind: str, read: Redis, env: Mapping[str, str] | None = None
) -> Telemetry:
    env = os.environ if env is None else env
    exported = exporting(env)
    if not exported and not settings.trace_store_traces:
        return Telemetry(None)
    provider = TracerProvider(resource=resource(kind, env))
    processors: list[SpanProcessor] = []
    if exported:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processors.append(BatchSpanProcessor(OTLPSpanExporter()))
    store = kept = None
    if settings.trace_store_traces:
        kept = SpanStoreProcessor()
        store = SpanStore(
            read, traces=settings.trace_store_traces, ttl_seconds=settings.trace_store_ttl_seconds
        )
        processors.append(kept)
    for processor in processors:
        provider.add_span_processor(processor)
    tracing.enable(provider.get_tracer("storefront"), starts_traces=exported)
    return Telemetry(provider, processors, store, kept)
