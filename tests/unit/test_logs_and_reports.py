"""JSON log lines (level, process, trace, command, sensitive fields masked), the page's click
report turned into spans, and the workers' /metrics bearer check."""

from __future__ import annotations

import json
import logging

import msgspec
import pytest
from opentelemetry.sdk.trace import TracerProvider

from app.kernel import tracing
from app.kernel.errors import ProblemError, ValidationFailed
from app.kernel.log_context import working_for
from app.logs import JsonFormatter
from app.observability.metrics_server import authorized
from app.observability.span_store import StoredSpan
from app.web.traces import BrowserTiming, browser_spans, decode_report, skew_ns

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _line(record: logging.LogRecord) -> dict[str, object]:
    line: dict[str, object] = json.loads(JsonFormatter("commands").format(record))
    return line


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("app.kernel.bus", logging.WARNING, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


def test_a_json_line_names_its_level_process_trace_and_command() -> None:
    provider = TracerProvider()
    tracing.enable(provider.get_tracer("test"), starts_traces=False)
    try:
        span = tracing.start("process", PARENT)
        with tracing.current_span(span), working_for("o1-2"):
            line = _line(_record("commit of %s failed"))
        tracing.end(span)
    finally:
        tracing.disable()
    assert line["level"] == "WARNING" and line["process"] == "commands"
    assert line["logger"] == "app.kernel.bus" and line["message"] == "commit of %s failed"
    assert line["trace_id"] == PARENT.split("-")[1] and len(str(line["span_id"])) == 16
    assert line["command_id"] == "o1-2"
    assert str(line["time"]).endswith("Z")


def test_a_json_line_outside_any_trace_or_command_has_neither() -> None:
    line = _line(_record("idle"))
    assert "trace_id" not in line and "command_id" not in line


def test_sensitive_extra_fields_are_masked() -> None:
    line = _line(
        _record(
            "signed in",
            card_number="4242424242424242",
            password="hunter2",
            csrf_token="t",
            user="alice",
            count=3,
        )
    )
    assert line["card_number"] == line["password"] == line["csrf_token"] == "***"
    assert line["user"] == "alice" and line["count"] == 3
    assert "4242424242424242" not in json.dumps(line)


def _report(**fields: object) -> bytes:
    base: dict[str, object] = {
        "traceparent": PARENT,
        "action": "Place order",
        "pressed": 1_000_000.0,
        "sent": 1_000_002.0,
        "answered": 1_000_050.0,
        "swaps": [
            {"status": "accepted", "received": 1_000_050.0, "painted": 1_000_060.0},
            {"status": "succeeded", "received": 1_000_200.0, "painted": 1_000_210.0},
        ],
    }
    base.update(fields)
    return msgspec.json.encode(base)


def test_a_report_becomes_the_click_its_request_and_a_span_per_swap() -> None:
    report = decode_report(_report())
    click = tracing.decode(PARENT)
    assert click is not None
    spans = browser_spans(report, click, 0)
    by_name = {span.name: span for span in spans}
    assert list(by_name) == ["request", "swap accepted", "swap succeeded", "click Place order"]
    root = by_name["click Place order"]
    assert root.parent is None and root.context.span_id == click.span_id  # type: ignore[union-attr]
    assert (root.start_time, root.end_time) == (1_000_000 * 10**6, 1_000_210 * 10**6)
    for name in ("request", "swap accepted", "swap succeeded"):
        assert by_name[name].parent.span_id == click.span_id  # type: ignore[union-attr]
    assert by_name["swap succeeded"].attributes == {"browser.status": "succeeded"}
    assert root.resource.attributes["service.name"] == "storefront-browser"


def test_a_page_clock_ahead_of_the_server_is_set_back() -> None:
    report = decode_report(_report())
    server = StoredSpan(
        trace="t", span="s", name="POST", service="web", start=1_000_001 * 10**6, end=0
    )
    assert skew_ns(report, server) == 10**6  # sent 1 ms after the server began: 1 ms ahead
    late = StoredSpan(
        trace="t", span="s", name="POST", service="web", start=1_000_009 * 10**6, end=0
    )
    assert skew_ns(report, late) == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"swaps": [{"status": "x", "received": 1, "painted": 2}] * 17},
        {"swaps": [{"status": "<script>", "received": 1, "painted": 2}]},
        {"action": "a" * 41},
        {"pressed": -1},
        {"extra": 1},
    ],
)
def test_a_report_out_of_bounds_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationFailed):
        decode_report(_report(**fields))


def test_a_report_that_is_not_json_is_refused() -> None:
    with pytest.raises(ProblemError):
        decode_report(b"{")
    assert BrowserTiming.__struct_config__.forbid_unknown_fields


def test_metrics_ask_for_the_bearer_token_when_one_is_set() -> None:
    assert authorized("", "")
    assert authorized("Bearer s3cret", "s3cret") and authorized("bearer s3cret ", "s3cret")
    assert not authorized("", "s3cret") and not authorized("Bearer nope", "s3cret")
    assert not authorized("Basic s3cret", "s3cret")
