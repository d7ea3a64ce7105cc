"""Line charts as SVG geometry, drawn by templates/fragments/admin_history.html.

A chart is a fixed viewBox (WIDTH by HEIGHT) the page scales to its width; each series is one
or more polylines (a gap in the data breaks the line) and the chart's scale tops out at a
round number above its highest value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

from app.queries.history import History

WIDTH = 360
HEIGHT = 90


class Series(msgspec.Struct, frozen=True):
    name: str
    css: str
    """A CSS class for its stroke (static/app.css: .series-0 …)."""
    lines: list[str]
    """SVG polyline `points` attributes, one per unbroken run of values."""
    last: float | None


class Chart(msgspec.Struct, frozen=True):
    id: str
    title: str
    unit: str
    top: float
    """The value at the top of the chart."""
    series: list[Series]
    width: int = WIDTH
    height: int = HEIGHT


def nice_top(value: float) -> float:
    """1, 2 or 5 times a power of ten, at least `value` (and at least 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)


def lines(values: Sequence[float | None], top: float) -> list[str]:
    step = WIDTH / max(1, len(values) - 1)
    runs: list[list[str]] = [[]]
    for i, value in enumerate(values):
        if value is None:
            if runs[-1]:
                runs.append([])
            continue
        y = HEIGHT - HEIGHT * min(value, top) / top
        runs[-1].append(f"{i * step:.1f},{y:.1f}")
    return [" ".join(run) if len(run) > 1 else _dot(run[0]) for run in runs if run]


def _dot(point: str) -> str:
    """A lone value (its neighbours missing) as a short dash, so it shows."""
    x, y = (float(v) for v in point.split(","))
    return f"{max(0.0, x - 2):.1f},{y:.1f} {min(WIDTH, x + 2):.1f},{y:.1f}"


def chart(chart_id: str, title: str, unit: str, series: dict[str, Sequence[float | None]]) -> Chart:
    highest = max((v for values in series.values() for v in values if v is not None), default=0)
    top = nice_top(highest)
    made = []
    for index, (name, values) in enumerate(series.items()):
        last = next((v for v in reversed(values) if v is not None), None)
        made.append(Series(name, f"series-{index % 6}", lines(values, top), last))
    return Chart(chart_id, title, unit, top, made)


def history_charts(history: History) -> list[Chart]:
    """The status page's charts: throughput, success rate, latency, lag, sockets. The last
    bucket is still filling up: it counts for the sampled charts only."""
    points = history.points
    done = points[:-1]
    seconds = history.bucket_seconds
    succeeded = [p.succeeded / seconds for p in done] + [None]
    failed = [p.failed / seconds for p in done] + [None]
    rate: list[float | None] = [
        round(100 * p.succeeded / p.finished, 1) if p.finished else None for p in done
    ] + [None]
    consumers = sorted({name for p in points for name in p.lag})
    lagging = [name for name in consumers if any(p.lag.get(name) for p in points)]
    lag: dict[str, Sequence[float | None]] = {
        name: [p.lag.get(name) if p.lag else None for p in points] for name in lagging
    }
    if not lag:
        lag = {"every consumer": [0.0 if p.lag else None for p in points]}
    return [
        chart("throughput", "Throughput", "commands/s", {"succeeded": succeeded, "failed": failed}),
        chart("success", "Success rate", "%", {"succeeded": rate}),
        chart(
            "latency",
            "Latency, accepted → finished",
            "ms",
            {"p50": [p.p50_ms for p in done] + [None], "p99": [p.p99_ms for p in done] + [None]},
        ),
        chart("lag", "Projection lag", "events", lag),
        chart("sockets", "WebSocket connections", "open", {"sockets": [p.sockets for p in points]}),
    ]
