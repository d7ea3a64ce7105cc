"""A command's trace as a waterfall: one bar per span (and per wait in a stream), in order.

The spans come from the span store (app/observability/span_store.py): the page's click and
swaps, the web request, the queue, the worker's decide and commit, each projection, the
process manager's steps and the gateway, each push. Bars are ordered as a tree (a child
after its parent, siblings by start), times in ms from the trace's first span.
"""

from __future__ import annotations

import time

import msgspec
from redis.asyncio import Redis

from app.kernel import keys, tracing
from app.kernel.redis_types import optional_text, text_list
from app.observability.span_store import StoredSpan, decode_span

WAIT_SHOWN_MS = 0.05
"""Waits in a stream shorter than this get no bar of their own."""
SETTLED_SECONDS = 5.0
"""A trace whose newest span ended this long ago, with the page's report in, is complete
(its processes write their spans within a fraction of a second)."""


class Bar(msgspec.Struct, frozen=True):
    label: str
    lane: str
    """browser, web, commands, projector, process, notifier, push or wait (a CSS class)."""
    service: str
    start_ms: float
    duration_ms: float
    depth: int
    error: str = ""


class Waterfall(msgspec.Struct, frozen=True):
    trace_id: str
    started_at: float
    """When the first span started (s since the epoch)."""
    total_ms: float
    bars: list[Bar]
    from_click: bool
    """The page reported its click (and swaps): the waterfall starts at the click."""
    pixel_ms: float | None = None
    """From the click to the last pushed status painted (the click's own span)."""
    trace_url: str = ""
    """The trace in the external trace UI, when one is configured."""
    settled: bool = False
    """Nothing more is expected: the page's report is in and no span ended lately."""


def lane(span: StoredSpan) -> str:
    if span.name.startswith("push "):
        return "push"
    return span.service.removeprefix("storefront-") or "web"


def label(span: StoredSpan) -> str:
    attributes = span.attributes
    group = str(attributes.get("messaging.consumer.group.name", ""))
    if span.kind == "consumer" and span.name.startswith("process "):
        if group == "commands":
            return f"command worker: {attributes.get(tracing.COMMAND_TYPE, 'command')}"
        if group.startswith("projection."):
            return f"projection {group.removeprefix('projection.')}"
        if group.startswith("process."):
            event = attributes.get("cqrs.event.type", "")
            return f"{group.removeprefix('process.')}: {event}".rstrip(": ")
        return span.name
    if span.name.startswith("send "):
        return f"enqueue on {attributes.get('messaging.destination.name', '')}".rstrip()
    return span.name


def _wait_label(span: StoredSpan) -> str:
    if span.name.startswith("push "):
        return "wait: projection → push"
    group = span.attributes.get("messaging.consumer.group.name", "")
    return "queue wait" if group == "commands" else "wait in stream"


def waterfall(
    spans: list[StoredSpan], trace_url: str = "", now: float | None = None
) -> Waterfall | None:
    unique = {span.span: span for span in spans}
    if not unique:
        return None
    first = min(span.start for span in unique.values())
    newest = max(span.end for span in unique.values())
    children: dict[str, list[StoredSpan]] = {}
    roots: list[StoredSpan] = []
    for span in unique.values():
        if span.parent and span.parent in unique:
            children.setdefault(span.parent, []).append(span)
        else:
            roots.append(span)
    bars: list[Bar] = []

    def add(span: StoredSpan, depth: int) -> None:
        start_ms = (span.start - first) / 1e6
        wait = span.attributes.get(tracing.WAIT, 0.0)
        if isinstance(wait, int | float) and wait * 1000 >= WAIT_SHOWN_MS:
            waited = wait * 1000
            bars.append(
                Bar(_wait_label(span), "wait", span.service, start_ms - waited, waited, depth)
            )
        bars.append(
            Bar(
                label(span),
                lane(span),
                span.service,
                start_ms,
                max(0.0, (span.end - span.start) / 1e6),
                depth,
                span.error,
            )
        )
        for child in sorted(children.get(span.span, []), key=lambda s: (s.start, s.end)):
            add(child, depth + 1)

    for root in sorted(roots, key=lambda s: (s.start, s.end)):
        add(root, 0)
    start = min(bar.start_ms for bar in bars)
    if start < 0:  # a wait began before the first span: it starts the waterfall
        bars = [msgspec.structs.replace(b, start_ms=b.start_ms - start) for b in bars]
        first += int(start * 1e6)
    total = max(bar.start_ms + bar.duration_ms for bar in bars)
    clicks = [
        s for s in unique.values() if s.service.endswith("browser") and s.name.startswith("click")
    ]
    return Waterfall(
        trace_id=next(iter(unique.values())).trace,
        started_at=first / 1e9,
        total_ms=round(total, 3),
        bars=[
            msgspec.structs.replace(
                b, start_ms=round(b.start_ms, 3), duration_ms=round(b.duration_ms, 3)
            )
            for b in bars
        ],
        from_click=bool(clicks),
        pixel_ms=round((clicks[0].end - clicks[0].start) / 1e6, 3) if clicks else None,
        trace_url=trace_url,
        settled=bool(clicks)
        and (time.time() if now is None else now) - newest / 1e9 > SETTLED_SECONDS,
    )


async def command_trace(read: Redis, command_id: str) -> str | None:
    return optional_text(await read.get(keys.command_trace(command_id)))


async def trace_spans(read: Redis, trace_id: str) -> list[StoredSpan]:
    raw = text_list(await read.lrange(keys.trace_spans(trace_id), 0, -1))
    return [decode_span(item) for item in raw]


async def command_waterfall(read: Redis, command_id: str, trace_ui: str = "") -> Waterfall | None:
    """The waterfall of the trace the command was accepted in, if the span store has it."""
    trace_id = await command_trace(read, command_id)
    if trace_id is None:
        return None
    url = trace_ui.replace("{trace_id}", trace_id) if trace_ui else ""
    return waterfall(await trace_spans(read, trace_id), url)
