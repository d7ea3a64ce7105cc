"""The load test's report: one Struct (written by `--json`), its table, and the progress line."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from app.loadtest.shard import Counts
from app.loadtest.stats import Summary, summarize

CLOCK_NOTE = (
    "push latency compares this machine's clock with the Redis server's (the ms in each "
    "position); it is only meaningful when both run on the same machine"
)


class Accepts(msgspec.Struct, frozen=True, kw_only=True):
    """POST /api/commands answers; per second over first request → last answer."""

    attempts: int
    accepted: int
    shed: int
    """503 overloaded (back-pressure with Retry-After): shed, not an error."""
    limited: int
    """429."""
    errors: int
    accepted_per_second: float
    accepted_pct: float
    shed_pct: float
    limited_pct: float
    error_pct: float
    error_kinds: dict[str, int]


class Orders(msgspec.Struct, frozen=True, kw_only=True):
    completed: int
    """succeeded + rejected + failed."""
    succeeded: int
    rejected: int = 0
    """Refused by a business rule (a declined card, not enough stock): the system worked."""
    failed: int
    """Something went wrong (an error, a timeout): app/kernel/outcomes.py."""
    unfinished: int
    completed_per_second: float
    """completed / seconds from the first order sent (the live line's rate, at the end)."""
    by_polling: int
    """Outcomes learnt by polling GET /api/commands/<id> (no push in time)."""
    rejection_codes: dict[str, int] = {}
    failure_codes: dict[str, int]


class StepLatency(msgspec.Struct, frozen=True):
    transition: str
    ms: Summary


class Push(msgspec.Struct, frozen=True, kw_only=True):
    watchers: int
    messages: int
    latency_ms: Summary
    watchers_dropped: int
    command_sockets_dropped: int
    close_codes: dict[str, int]
    note: str | None


class Report(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    mode: str
    shoppers: int
    watchers: int
    procs: int
    started_at: str
    seconds: float
    """From the first request to the last answer or outcome (watchers only: the run)."""
    accepts: Accepts
    orders: Orders
    client_latency_ms: Summary
    """Send (open loop: the arrival's due time) → outcome seen by this client."""
    sampled: int
    """Orders whose steps were fetched from GET /api/commands/<id>."""
    steps: list[StepLatency]
    end_to_end_ms: Summary
    """accepted → succeeded, from the server's step times, over the sampled orders."""
    push: Push


def pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if value < 1000 else f"{value:,.0f}"


def _row(label: str, summary: Summary) -> str:
    cells = (summary.p50, summary.p90, summary.p99, summary.max)
    return f"  {label:<44}{summary.count:>8,}" + "".join(f"{_ms(c):>9}" for c in cells)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name}: {n:,}" for name, n in sorted(counts.items())) or "none"


def render(report: Report) -> str:
    a, o, p = report.accepts, report.orders, report.push
    ceiling = report.mode.startswith("ceiling")
    lines = [
        f"storefront loadtest — {report.url}, {report.mode}, {report.shoppers} shoppers, "
        f"{report.watchers} watchers, {report.procs} process(es), {report.seconds:.1f} s",
        f"  requests {a.attempts:,}: accepted {a.accepted:,} ({a.accepted_pct:.1f}%, "
        f"{a.accepted_per_second:,.1f}/s), shed 503 {a.shed:,} ({a.shed_pct:.1f}%), "
        f"429 {a.limited:,} ({a.limited_pct:.1f}%), errors {a.errors:,} ({a.error_pct:.1f}%)",
    ]
    if a.error_kinds:
        lines.append(f"  errors by kind: {_counts(a.error_kinds)}")
    sent = a.attempts > 0
    if sent and not ceiling:
        lines.append(
            f"  orders completed {o.completed:,} ({o.completed_per_second:,.1f}/s): succeeded "
            f"{o.succeeded:,}, rejected {o.rejected:,}, failed {o.failed:,}, unfinished "
            f"{o.unfinished:,}; {o.by_polling:,} learnt by polling"
        )
        if o.rejection_codes:
            lines.append(f"  rejections by code: {_counts(o.rejection_codes)}")
        if o.failure_codes:
            lines.append(f"  failures by code: {_counts(o.failure_codes)}")
    lines.append(f"  {'latency, ms':<44}{'n':>8}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
    if sent:
        label = "request → answer" if ceiling else "client: send → outcome seen"
        lines.append(_row(label, report.client_latency_ms))
    for step in report.steps:
        lines.append(_row(step.transition, step.ms))
    if report.sampled:
        lines.append(_row("end to end: accepted → succeeded", report.end_to_end_ms))
    if report.watchers:
        lines.append(_row(f"push to {p.watchers} catalog watchers", p.latency_ms))
    if not ceiling:
        lines.append(
            f"  sockets dropped: watchers {p.watchers_dropped:,}, command sockets "
            f"{p.command_sockets_dropped:,}"
            + (f" ({_counts(p.close_codes)})" if p.close_codes else "")
        )
    if p.note and report.watchers:
        lines.append(f"  note: {p.note}")
    return "\n".join(lines)


def completed_rate(completed: int, seconds: float) -> float:
    """Orders completed per second since the first was sent: the live line's rate and the
    final table's, one definition."""
    return round(completed / max(seconds, 1e-9), 2) if completed else 0.0


def progress_line(
    elapsed: float,
    counts: Counts,
    rate: float,
    latencies: Summary,
    push: Iterable[float],
) -> str:
    pushed = summarize(push)
    done = counts.succeeded + counts.rejected + counts.failed
    line = (
        f"[{elapsed:6.1f}s] done {done:,} ({rate:,.1f}/s)  succeeded {counts.succeeded:,}  "
        f"rejected {counts.rejected:,}  failed {counts.failed:,}  p50 {_ms(latencies.p50)} ms  "
        f"p99 {_ms(latencies.p99)} ms  accepted {counts.accepted:,}  shed {counts.shed:,}  "
        f"errors {counts.errors:,}"
    )
    if pushed.count:
        line += f"  push p99 {_ms(pushed.p99)} ms  dropped {counts.watcher_dropped:,}"
    return line
