"""The span store's choice of what to keep, the waterfall built from stored spans, the
history's buckets and quantiles, and the charts drawn from them."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from app.kernel import tracing
from app.observability.history import LATENCY_BINS_MS, bucket_of, latency_field, quantile_ms
from app.observability.span_store import SpanStoreProcessor, StoredSpan, stored
from app.queries.history import History, HistoryPoint
from app.queries.waterfall import waterfall
from app.web.charts import HEIGHT, TOP, WIDTH, bar_chart, chart, history_charts, lines, nice_top

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TRACE = "0af7651916cd43dd8448eb211c80319c"


def _kept(processor: SpanStoreProcessor) -> list[str]:
    return [span.name for span in processor.take()]


def test_the_span_store_keeps_command_traces_and_forgets_plain_requests() -> None:
    processor = SpanStoreProcessor()
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracing.enable(provider.get_tracer("test"), starts_traces=True)
    try:
        page = tracing.incoming("GET", "")  # a page view: no command
        assert page is not None
        with tracing.current_span(page), tracing.span("render"):
            pass
        tracing.end(page)
        assert _kept(processor) == []

        post = tracing.incoming("POST", "")
        assert post is not None
        with tracing.current_span(post):
            with tracing.span("decode"):
                pass
            with tracing.span("send") as send:
                assert send is not None
                send.set_attribute(tracing.COMMAND_ID, "c1-0")
        tracing.end(post)
        assert _kept(processor) == ["decode", "send", "POST"]

        # in a worker: children (from timings, under a remote-looking parent) end first
        worker = tracing.processing("{p0}:commands", "commands", "1-0", PARENT)
        context = tracing.of(worker)
        tracing.record("decide X", context, 1, 2)
        tracing.end(worker)
        assert _kept(processor) == ["decide X", "process {p0}:commands"]
        tracing.record("late", context, 3, 4)  # its trace is known to be kept
        assert _kept(processor) == ["late"]
    finally:
        tracing.disable()


def _span(name: str, span: str, parent: str, start: int, end: int, **extra: object) -> StoredSpan:
    service = str(extra.pop("service", "storefront-web"))
    kind = str(extra.pop("kind", "internal"))
    return StoredSpan(
        trace=TRACE,
        span=span,
        name=name,
        service=service,
        start=start * 1_000_000,
        end=end * 1_000_000,
        parent=parent,
        kind=kind,
        attributes={k: v for k, v in extra.items() if isinstance(v, str | int | float)},
    )


def test_a_waterfall_runs_from_the_click_with_each_wait_before_its_step() -> None:
    spans = [
        _span("click Place order", "c", "", 0, 100, service="storefront-browser"),
        _span("POST /ui/orders", "s", "c", 5, 20, kind="server"),
        _span(
            "send {p0}:commands",
            "q",
            "s",
            10,
            12,
            kind="producer",
            **{"messaging.destination.name": "{p0}:commands"},
        ),
        _span(
            "process {p0}:commands",
            "w",
            "q",
            15,
            30,
            service="storefront-commands",
            kind="consumer",
            **{
                "messaging.consumer.group.name": "commands",
                tracing.COMMAND_TYPE: "PlaceOrder",
                tracing.WAIT: 0.003,
            },
        ),
        _span("swap succeeded", "x", "c", 95, 100, service="storefront-browser"),
    ]
    made = waterfall(list(reversed(spans)), "http://ui/trace/" + TRACE, now=0)
    assert made is not None
    assert [(b.label, b.start_ms, b.duration_ms, b.depth) for b in made.bars] == [
        ("click Place order", 0.0, 100.0, 0),
        ("POST /ui/orders", 5.0, 15.0, 1),
        ("enqueue on {p0}:commands", 10.0, 2.0, 2),
        ("queue wait", 12.0, 3.0, 3),
        ("command worker: PlaceOrder", 15.0, 15.0, 3),
        ("swap succeeded", 95.0, 5.0, 1),
    ]
    assert [b.lane for b in made.bars] == ["browser", "web", "web", "wait", "commands", "browser"]
    assert made.from_click and made.pixel_ms == 100.0 and made.total_ms == 100.0
    assert made.trace_url.endswith(TRACE)
    assert not made.settled  # "now" is before the spans ended
    assert waterfall(spans, now=10**9).settled  # type: ignore[union-attr]


def test_a_waterfall_without_the_page_s_report_starts_at_its_first_span() -> None:
    made = waterfall([_span("POST /api/commands", "s", "remote", 50, 60, kind="server")])
    assert made is not None and not made.from_click and made.pixel_ms is None
    assert made.bars[0].start_ms == 0.0 and made.total_ms == 10.0
    assert waterfall([]) is None


def test_stored_spans_keep_what_a_waterfall_shows() -> None:
    provider = TracerProvider()
    tracing.enable(provider.get_tracer("test"), starts_traces=False)
    try:
        span = tracing.start(
            "process x",
            PARENT,
            kind=SpanKind.CONSUMER,
            attributes={"messaging.consumer.group.name": "g", "http.request.header": "secret"},
        )
        assert span is not None
        tracing.end(span, "boom")
        made = stored(span)  # type: ignore[arg-type]
    finally:
        tracing.disable()
    assert made.trace == TRACE and made.parent == PARENT.split("-")[2]
    assert made.kind == "consumer" and made.error == "boom"
    assert made.attributes == {"messaging.consumer.group.name": "g"}


def test_history_buckets_and_latency_quantiles() -> None:
    assert bucket_of(1_000_009.9) == 1_000_000
    assert latency_field(3) == "lat:5" and latency_field(5) == "lat:5"
    assert latency_field(7) == "lat:10" and latency_field(10**6) == "lat:inf"
    assert quantile_ms({}, 0.5) is None
    bins = {"lat:5": 50, "lat:10": 49, "lat:100": 1}
    assert quantile_ms(bins, 0.5) == 5.0
    assert 5 < quantile_ms(bins, 0.9) <= 10  # type: ignore[operator]
    assert 25 < quantile_ms(bins, 0.995) <= 100  # type: ignore[operator]
    assert quantile_ms({"lat:inf": 3}, 0.5) == float(LATENCY_BINS_MS[-1])


def test_charts_scale_to_a_round_top_and_break_their_lines_at_gaps() -> None:
    assert [nice_top(v) for v in (0, 0.4, 3, 12, 480, 1000)] == [1, 1, 5, 20, 500, 1000]
    joined, alone = lines([1.0, 2.0, None, 2.0, None, None, 0.0, 1.0], 2.0)
    assert len(joined) == 2 and all(run.count(" ") == 1 for run in joined)
    assert joined[0].endswith(f",{TOP:.1f}")  # 2.0 of 2.0: the top of the plot
    assert len(alone) == 1  # a value alone is a dot, not a dash
    assert alone[0].y == TOP  # 2.0 again
    made = chart("c", "C", "u", {"a": [None, None], "b": [3.0, 4.0]}, [0, 10], 10)
    assert made.top == 5 and made.series[0].lines == [] and made.series[0].dots == []
    assert made.series[1].last == 4.0
    assert all(0 <= float(xy.split(",")[1]) <= HEIGHT for xy in made.series[1].lines[0].split())
    assert [t.label for t in made.y_ticks] == ["0", "2.5", "5"]
    assert [t.label for t in made.x_ticks] == ["00:00", "00:00"]
    assert made.hovers[1].title == "00:00:10 to 00:00:20 UTC: a no data, b 4 (u)"
    assert 0 < made.hovers[0].x + made.hovers[0].width <= made.hovers[1].x + 0.01 <= WIDTH


def test_counts_are_bars_and_a_bucket_without_any_is_empty() -> None:
    made = bar_chart(
        "t",
        "T",
        "u",
        {"ok": [0.0, 2.0, 0.0, 0.0], "bad": [0.0, 1.0, 0.0, None]},
        [0, 10, 20, 30],
        10,
    )
    assert made.top == 5 and len(made.bars) == 2  # one bucket, two stacked values
    ok, bad = made.bars
    assert (ok.css, bad.css) == ("series-0", "series-1") and ok.x == bad.x
    assert bad.y + bad.height == pytest.approx(ok.y)  # stacked on it
    assert "ok 2, bad 1" in made.hovers[1].title and "bad no data" in made.hovers[3].title


def test_the_status_page_charts_leave_the_bucket_still_filling_out_of_rates() -> None:
    def point(at: int, ok: int, rejected: int, failed: int, **lag: int) -> HistoryPoint:
        return HistoryPoint(at, ok, rejected, failed, 4.0, 9.0, dict(lag), 2 if lag else None)

    history = History(
        10, [point(0, 10, 0, 0, catalog=0), point(10, 5, 20, 5, catalog=7), point(20, 1, 0, 0)]
    )
    charts = {c.id: c for c in history_charts(history)}
    assert list(charts) == ["throughput", "success", "latency", "lag", "sockets"]
    throughput = {s.name: s.last for s in charts["throughput"].series}
    assert throughput == {"succeeded": 0.5, "rejected": 2.0, "failed": 0.5}
    assert charts["success"].series[0].last == 50.0  # rejections do not count against it
    assert [s.name for s in charts["lag"].series] == ["catalog"]
    assert charts["sockets"].series[0].last == 2
