"""The span store: recent commands' traces in Redis, for the waterfall on each command's page.

A `SpanStoreProcessor` (an OTel SpanProcessor, in every process) holds the finished spans of
each trace until one of them shows that the trace is a command's: the span that accepted a
command (it names it), or one that continues a trace taken off a stream (a consumer's). From
then on the trace's spans are kept as they end; a trace whose request ended without naming a
command is forgotten, and so are the oldest of those still undecided past OPEN_TRACES. The kept
spans are written in batches (one pipeline every FLUSH_SECONDS) to the read Redis: a list
per trace, capped, with a TTL; a sorted set of traces caps how many are kept (the oldest go);
and each command's trace id under its command id.

Only what a waterfall shows is kept (names, times, a few attributes): the full spans go to
an OTLP receiver, when one is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import cast

import msgspec
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanKind, StatusCode
from redis.asyncio import Redis

from app.kernel import keys, tracing
from app.kernel.consumer import INFRA_ERRORS

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.25
MAX_SPANS_PER_TRACE = 1000
OPEN_TRACES = 10_000
"""Traces not known to be a command's yet, held at most (the oldest are dropped)."""
KEPT_TRACES = 10_000
"""Traces this process decided to keep, remembered for spans that end after their root."""
KEPT_ATTRIBUTES = frozenset(
    {
        tracing.COMMAND_ID,
        tracing.COMMAND_TYPE,
        tracing.WAIT,
        "messaging.destination.name",
        "messaging.consumer.group.name",
        "messaging.batch.message_count",
        "http.route",
        "http.request.method",
        "http.response.status_code",
        "cqrs.event.type",
        "cqrs.view",
        "cqrs.commit.result",
        "gateway.outcome",
        "browser.status",
    }
)
_KINDS = {
    SpanKind.SERVER: "server",
    SpanKind.CLIENT: "client",
    SpanKind.PRODUCER: "producer",
    SpanKind.CONSUMER: "consumer",
    SpanKind.INTERNAL: "internal",
}


class StoredSpan(msgspec.Struct, frozen=True, omit_defaults=True):
    """A span as the waterfall needs it; ids in hex, times in ns since the epoch."""

    trace: str
    span: str
    name: str
    service: str
    start: int
    end: int
    parent: str = ""
    kind: str = "internal"
    attributes: dict[str, str | int | float | bool] = {}
    error: str = ""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(StoredSpan)


def decode_span(raw: str | bytes) -> StoredSpan:
    return _decoder.decode(raw)


def stored(span: ReadableSpan) -> StoredSpan:
    context = span.context
    assert context is not None
    resource = span.resource.attributes
    attributes = {k: v for k, v in (span.attributes or {}).items() if k in KEPT_ATTRIBUTES}
    return StoredSpan(
        trace=f"{context.trace_id:032x}",
        span=f"{context.span_id:016x}",
        name=span.name,
        service=str(resource.get("service.name", "")),
        start=span.start_time or 0,
        end=span.end_time or span.start_time or 0,
        parent=f"{span.parent.span_id:016x}" if span.parent is not None else "",
        kind=_KINDS.get(span.kind, "internal"),
        attributes={k: v for k, v in attributes.items() if isinstance(v, str | int | float)},
        error=(span.status.description or "error")
        if span.status.status_code is StatusCode.ERROR
        else "",
    )


def _commands(span: ReadableSpan) -> bool:
    """The span shows its trace is a command's: it accepted one, or continues a trace taken
    off a stream."""
    if span.kind is SpanKind.CONSUMER and span.parent is not None:
        return True
    return tracing.COMMAND_ID in (span.attributes or {})


def _request_ended(span: ReadableSpan) -> bool:
    """A request's own span ended: what it did has ended before it."""
    return span.kind is SpanKind.SERVER


class SpanStoreProcessor(SpanProcessor):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: OrderedDict[int, list[ReadableSpan]] = OrderedDict()
        self._kept: OrderedDict[int, None] = OrderedDict()
        self._ready: list[ReadableSpan] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None:
            return
        trace_id = context.trace_id
        with self._lock:
            if trace_id in self._kept:
                self._ready.append(span)
                return
            if _commands(span):
                self._kept[trace_id] = None
                while len(self._kept) > KEPT_TRACES:
                    self._kept.popitem(last=False)
                self._ready += self._open.pop(trace_id, [])
                self._ready.append(span)
                return
            if _request_ended(span):
                self._open.pop(trace_id, None)
                return
            self._open.setdefault(trace_id, []).append(span)
            while len(self._open) > OPEN_TRACES:
                self._open.popitem(last=False)

    def add(self, spans: Sequence[ReadableSpan]) -> None:
        """Spans made elsewhere (a page's report of its click): kept as they are."""
        with self._lock:
            self._ready += spans

    def take(self) -> list[ReadableSpan]:
        with self._lock:
            ready, self._ready = self._ready, []
        return ready

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class SpanStore:
    """The span store's Redis side: writing spans in batches, and the cap on traces kept."""

    def __init__(self, redis: Redis, *, traces: int, ttl_seconds: int) -> None:
        self._redis = redis
        self._traces = traces
        self._ttl = ttl_seconds

    async def write(self, spans: Sequence[StoredSpan]) -> None:
        by_trace: dict[str, list[bytes]] = {}
        commands: dict[str, str] = {}
        for span in spans:
            by_trace.setdefault(span.trace, []).append(_encoder.encode(span))
            command_id = span.attributes.get(tracing.COMMAND_ID)
            if isinstance(command_id, str):
                commands[command_id] = span.trace
        if not by_trace:
            return
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            for trace_id, encoded in by_trace.items():
                key = keys.trace_spans(trace_id)
                pipe.rpush(key, *encoded)
                pipe.ltrim(key, -MAX_SPANS_PER_TRACE, -1)
                pipe.expire(key, self._ttl)
                pipe.zadd(keys.recent_traces(), {trace_id: now}, nx=True)
            for command_id, trace_id in commands.items():
                pipe.set(keys.command_trace(command_id), trace_id, ex=self._ttl, nx=True)
            pipe.zremrangebyscore(keys.recent_traces(), "-inf", now - self._ttl)
            pipe.zcard(keys.recent_traces())
            replies = await pipe.execute()
        over = int(replies[-1]) - self._traces
        if over > 0:
            await self._evict(over)

    async def _evict(self, count: int) -> None:
        oldest = cast(
            list[tuple[str, float]], await self._redis.zpopmin(keys.recent_traces(), count)
        )
        if oldest:
            await self._redis.delete(*(keys.trace_spans(str(trace_id)) for trace_id, _ in oldest))


async def write_spans(processor: SpanStoreProcessor, store: SpanStore, stop: asyncio.Event) -> None:
    """Write what the processor kept, every FLUSH_SECONDS, until `stop` (then once more)."""
    while True:
        stopping = stop.is_set()
        ready = processor.take()
        if ready:
            try:
                await store.write([stored(span) for span in ready])
            except INFRA_ERRORS as exc:
                log.warning("span store: %d spans not written (redis: %s)", len(ready), exc)
        if stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=FLUSH_SECONDS)
