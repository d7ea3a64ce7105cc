"""Trace context that travels with the data, and spans that cost nothing when nobody traces.

A command envelope carries the W3C `traceparent` of the span that made it; every stream entry
a commit writes (events, integration events, status notices) and every queued command carries
one in its `tp` field. A consumer continues that trace (its span is a child of the entry's
context), and a batch is one span with a link to each entry's context.

Only a *sampled* context is ever written, so a process that reads no `tp` makes no span. A
trace is started at the edge only (app.web.tracing): for every request when spans are
exported, else when a request brings a sampled `traceparent` of its own (the storefront's
pages send one with each form). Until `enable()` is called (app.observability.telemetry does,
once per process) every function here returns at its first line.

Over 300 lines, one job: the trace context in and out of every kind of entry, one place.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from contextvars import ContextVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from app.kernel.positions import entry_ms

Attributes = Mapping[str, AttributeValue]

SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL = (
    SpanKind.SERVER,
    SpanKind.CLIENT,
    SpanKind.PRODUCER,
    SpanKind.CONSUMER,
    SpanKind.INTERNAL,
)
FIELD = "tp"
"""The stream-entry field that holds an entry's traceparent."""
COMMAND_ID = "cqrs.command.id"
"""Set on the span that accepted a command (the edge): it names the command's trace."""
COMMAND_TYPE = "cqrs.command.type"
WAIT = "cqrs.wait_seconds"
"""On a consumer's span: how long its entry waited in the stream before being taken."""

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOTHING: AbstractContextManager[Span | None] = contextlib.nullcontext(None)
_ROOT = otel_context.Context()


class _State:
    enabled = False
    starts_traces = False
    tracer: trace.Tracer = trace.NoOpTracer()


_state = _State()
_recording: ContextVar[bool] = ContextVar("tracing_recording", default=False)
"""Set while a recorded span is current (made so by `current_span`, or a child of one): the
one check that untraced code pays."""


def enable(tracer: trace.Tracer, *, starts_traces: bool) -> None:
    """Record spans with `tracer`; `starts_traces`: the edge starts a trace for every request
    (spans are exported), not only for requests that bring a sampled traceparent."""
    _state.tracer = tracer
    _state.starts_traces = starts_traces
    _state.enabled = True


def disable() -> None:
    _state.enabled = False
    _state.starts_traces = False
    _state.tracer = trace.NoOpTracer()


def enabled() -> bool:
    return _state.enabled


def starts_traces() -> bool:
    return _state.enabled and _state.starts_traces


# --- traceparent strings ---------------------------------------------------------------------


def encode(context: SpanContext) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-01"


def decode(traceparent: str) -> SpanContext | None:
    """A sampled remote span context, or None (malformed, or not sampled: not continued)."""
    parts = traceparent.split("-")
    if len(parts) != 4 or parts[0] != "00" or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None
    if not trace_id or not span_id or not flags & 1:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=_SAMPLED)


def of(span: Span | None) -> str:
    """The traceparent of a recording span (to write beside what it produced), else ""."""
    if span is None or not span.is_recording():
        return ""
    return encode(span.get_span_context())


def current() -> str:
    """The traceparent of the current span if it is recorded, else ""."""
    if not _recording.get():
        return ""
    context = trace.get_current_span().get_span_context()
    if not context.trace_flags.sampled or not context.is_valid:
        return ""
    return encode(context)


def context_of(traceparent: str) -> otel_context.Context | None:
    remote = decode(traceparent) if traceparent else None
    return trace.set_span_in_context(NonRecordingSpan(remote), _ROOT) if remote else None


# --- spans -----------------------------------------------------------------------------------


def span(
    name: str, *, kind: SpanKind = INTERNAL, attributes: Attributes | None = None
) -> AbstractContextManager[Span | None]:
    """A child of the current span, current while it runs; nothing when nobody traces."""
    if not _recording.get() or not trace.get_current_span().is_recording():
        return _NOTHING
    return _state.tracer.start_as_current_span(name, kind=kind, attributes=attributes)


def start(
    name: str,
    parent: str,
    *,
    kind: SpanKind = INTERNAL,
    attributes: Attributes | None = None,
    links: Iterable[Link] = (),
    start_ns: int | None = None,
) -> Span | None:
    """A span continuing `parent` (a traceparent); None when there is nothing to continue."""
    if not _state.enabled or not parent:
        return None
    context = context_of(parent)
    if context is None:
        return None
    return _state.tracer.start_span(
        name, context, kind, attributes, list(links), start_time=start_ns
    )


def incoming(
    name: str, traceparent: str, *, kind: SpanKind = SERVER, attributes: Attributes | None = None
) -> Span | None:
    """The span of work arriving at the edge: continuing the caller's sampled context, or a
    trace of its own when this process starts traces (spans are exported); else None."""
    if not _state.enabled:
        return None
    context = context_of(traceparent) if traceparent else None
    if context is None:
        if not _state.starts_traces:
            return None
        context = _ROOT
    made = _state.tracer.start_span(name, context, kind, attributes)
    return made if made.is_recording() else None


def record(
    name: str,
    parent: str,
    start_ns: int,
    end_ns: int,
    *,
    kind: SpanKind = INTERNAL,
    attributes: Attributes | None = None,
    links: Iterable[Link] = (),
    error: str = "",
) -> None:
    """A finished span continuing `parent`, from timings taken while the work ran (batched
    work is timed once, and each traced item gets its span afterwards)."""
    made = start(name, parent, kind=kind, attributes=attributes, links=links, start_ns=start_ns)
    if made is not None:
        end(made, error, end_ns)


def end(span: Span | None, error: str = "", end_ns: int | None = None) -> None:
    if span is None:
        return
    if error:
        span.set_status(Status(StatusCode.ERROR, error))
    span.end(end_ns)


def batch(
    name: str, traceparents: Iterable[str], attributes: Attributes | None = None
) -> Span | None:
    """A span of its own for a batch, linked to the context of each traced item in it; None
    when no item of the batch is traced."""
    if not _state.enabled:
        return None
    found = [Link(c) for c in map(decode, filter(None, traceparents)) if c is not None]
    if not found:
        return None
    return _state.tracer.start_span(name, _ROOT, CONSUMER, attributes, found)


def link(span: Span | None) -> list[Link]:
    """A link to `span` (e.g. from each item's span to its batch's), if it is recorded."""
    if span is None or not span.is_recording():
        return []
    return [Link(span.get_span_context())]


def processing(
    stream: str,
    group: str,
    entry_id: str,
    parent: str,
    attributes: Attributes | None = None,
    *,
    message_id: str = "",
) -> Span | None:
    """The `process` span of one traced stream entry: a child of the entry's context, linked
    to the batch it came in, with how long the entry waited. None when it is not traced."""
    if not _state.enabled or not parent:
        return None
    began = time.time_ns()
    return start(
        f"process {stream}",
        parent,
        kind=CONSUMER,
        attributes={
            **messaging("process", stream, group=group, message_id=message_id or entry_id),
            WAIT: waited(entry_id, began),
            **(attributes or {}),
        },
        links=link_current(),
        start_ns=began,
    )


def link_current() -> list[Link]:
    """A link to the current span (a batch's, while its handler runs), if it is recorded."""
    if not _recording.get():
        return []
    return link(trace.get_current_span())


@contextlib.contextmanager
def current_span(span: Span | None) -> Iterator[None]:
    """Make `span` the current one while the block runs (it is not ended here)."""
    if span is None:
        yield
        return
    token = _recording.set(span.is_recording())
    try:
        with trace.use_span(span, end_on_exit=False, record_exception=False):
            yield
    finally:
        _recording.reset(token)


def now_ns() -> int:
    return time.time_ns()


def messaging(
    operation: str,
    destination: str,
    *,
    group: str = "",
    message_id: str = "",
    count: int = 0,
) -> dict[str, AttributeValue]:
    """OTel messaging attributes of an operation (send, receive, process) on a Redis stream."""
    attributes: dict[str, AttributeValue] = {
        "messaging.system": "redis",
        "messaging.operation.type": operation,
        "messaging.destination.name": destination,
    }
    if group:
        attributes["messaging.consumer.group.name"] = group
    if message_id:
        attributes["messaging.message.id"] = message_id
    if count:
        attributes["messaging.batch.message_count"] = count
    return attributes


def waited(entry_id: str, start_ns: int) -> float:
    """Seconds from an entry's XADD (the ms of its id, Redis's clock) to `start_ns`."""
    ms = entry_ms(entry_id)
    return max(0.0, round(start_ns / 1e9 - ms / 1000, 6)) if ms is not None else 0.0
