"""Click to pixel: a page's report of a command's click and swaps, and the command's waterfall.

The page (static/app.js) starts a trace when a form is submitted — its `traceparent` names
the click's span — and, once the command's final status has been swapped in, posts what it
saw: when the button was pressed, when the request went and its answer came, and when each
pushed status arrived and was on screen. Only the command's sender (or an admin) may report,
once per command, in at most MAX_REPORT bytes, and only for the click that started the
command's trace. The report becomes spans of that trace (service `storefront-browser`): the
click (pressed → last swap painted), the request, and one `swap <status>` per pushed status.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Annotated

import msgspec
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from app.kernel import keys, tracing
from app.kernel.errors import NotFound, ValidationFailed
from app.kernel.messages import FieldError
from app.kernel.validation import (
    decode_document,
)
from app.observability.span_store import StoredSpan
from app.observability.telemetry import Telemetry
from app.queries.waterfall import command_trace, command_waterfall, trace_spans
from app.web.api import require_json, visible_command
from app.web.auth import require_user, services_of
from app.web.bodies import read_body

MAX_REPORT = 4096
REPORT_WAIT_SECONDS = 2.0
"""How long a report waits for the spans of its command's request to be in the store (the
web process that served it writes them within a quarter of a second)."""
BROWSER = Resource.create({"service.name": "storefront-browser", "service.namespace": "storefront"})
Millis = Annotated[float, msgspec.Meta(ge=0, le=1e14)]
"""A time in the browser, ms since the epoch."""


class Swap(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    status: Annotated[str, msgspec.Meta(pattern="^[a-z_]{1,32}$")]
    received: Millis
    """When the pushed fragment arrived (or the form's answer, for the first status)."""
    painted: Millis
    """The first frame after it was swapped in: the pixel."""


class BrowserTiming(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    traceparent: Annotated[str, msgspec.Meta(max_length=55)]
    pressed: Millis
    sent: Millis
    answered: Millis
    action: Annotated[str, msgspec.Meta(max_length=40, pattern="^[A-Za-z0-9 _-]*$")] = ""
    swaps: Annotated[list[Swap], msgspec.Meta(max_length=16)] = []


_decoder = msgspec.json.Decoder(BrowserTiming)


def decode_report(raw: bytes) -> BrowserTiming:
    return decode_document(_decoder, raw)


def skew_ns(report: BrowserTiming, server: StoredSpan) -> int:
    """How far the page's clock is ahead of the server's (ns), if that is visible: its
    request cannot have been sent after the server began answering it."""
    sent = int(report.sent * 1e6)
    return max(0, sent - server.start)


def browser_spans(report: BrowserTiming, click: SpanContext, shift_ns: int) -> list[ReadableSpan]:
    """The click (its own id, from the page), the request, and each swap, as finished spans."""

    def at(ms: float) -> int:
        return int(ms * 1e6) - shift_ns

    def child(name: str, start: float, end: float, **attributes: str) -> ReadableSpan:
        context = SpanContext(
            click.trace_id, random.getrandbits(64), is_remote=False, trace_flags=click.trace_flags
        )
        return ReadableSpan(
            name,
            context,
            parent=clicked,
            resource=BROWSER,
            attributes=attributes,
            kind=SpanKind.CLIENT if name == "request" else SpanKind.INTERNAL,
            start_time=at(start),
            end_time=max(at(start), at(end)),
        )

    clicked = SpanContext(
        click.trace_id, click.span_id, is_remote=False, trace_flags=click.trace_flags
    )
    last = max([report.answered, *(s.painted for s in report.swaps)])
    spans = [child("request", report.sent, report.answered)]
    spans += [
        child(f"swap {s.status}", s.received, s.painted, **{"browser.status": s.status})
        for s in report.swaps
    ]
    final = report.swaps[-1].status if report.swaps else ""
    spans.append(
        ReadableSpan(
            f"click {report.action or 'submit'}".strip(),
            clicked,
            parent=None,
            resource=BROWSER,
            attributes={"browser.status": final},
            start_time=at(report.pressed),
            end_time=max(at(report.pressed), at(last)),
        )
    )
    return spans


async def report_timing(request: Request) -> Response:
    await require_user(request)  # a cookie session: CSRF checked
    command = await visible_command(request)  # its sender or an admin, else 404
    require_json(request)
    report = decode_report(await read_body(request, MAX_REPORT))
    telemetry: Telemetry = request.app.state.telemetry
    click = tracing.decode(report.traceparent)
    if click is None:
        raise ValidationFailed([FieldError("$.traceparent", "A sampled W3C traceparent")])
    if not telemetry.enabled:
        return Response(status_code=204)
    await telemetry.flush()
    read = services_of(request).read
    server = await _clicked(read, command.command_id, click)
    if server is None:
        raise NotFound("No trace of this command started with this click")
    ttl = services_of(request).settings.trace_store_ttl_seconds
    if not await read.set(keys.browser_report(command.command_id), "1", nx=True, ex=ttl):
        return Response(status_code=204)  # reported already: the first report stands
    telemetry.emit(browser_spans(report, click, skew_ns(report, server)))
    return Response(status_code=204)


async def _clicked(read: Redis, command_id: str, click: SpanContext) -> StoredSpan | None:
    """The request the click made, if it started the command's trace (waiting, a little, for
    its spans to be written)."""
    trace_id, parent = f"{click.trace_id:032x}", f"{click.span_id:016x}"
    deadline = time.monotonic() + REPORT_WAIT_SECONDS
    while True:
        if await command_trace(read, command_id) == trace_id:
            for span in await trace_spans(read, trace_id):
                if span.parent == parent:
                    return span
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.05)


async def waterfall_fragment(request: Request) -> Response:
    command = await visible_command(request)
    services = services_of(request)
    found = await command_waterfall(
        services.read, command.command_id, services.settings.trace_ui_url
    )
    html = request.app.state.renderer.fragment("waterfall", w=found, c=command)
    return HTMLResponse(html)


routes: list[BaseRoute] = [
    Route("/ui/commands/{command_id}/timing", report_timing, methods=["POST"]),
    Route("/fragments/commands/{command_id}/waterfall", waterfall_fragment),
]
