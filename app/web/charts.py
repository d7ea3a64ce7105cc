"""Charts as SVG geometry, drawn by templates/fragments/admin_history.html.

A chart is a fixed viewBox (WIDTH by HEIGHT) with a plot area inside its axes: the y axis is
labelled with its unit and values (0, half, top: a round number above the highest value), the
x axis with the bucket times (UTC). Sparse data reads as what it is:
* counts (throughput) are stacked bars per bucket, so a bucket without commands is empty,
  never a spike down to zero and back;
* measures (rates, latencies, lag) are lines only between neighbouring buckets that have a
  value; a value whose neighbours have none is a dot, and a bucket without one is a gap.
Every bucket has a hover target whose <title> gives its time and each series' value there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

from app.kernel.clock import iso
from app.queries.history import History

WIDTH = 400
HEIGHT = 150
LEFT, RIGHT, TOP, BOTTOM = 46, 8, 8, 22
PLOT_W = WIDTH - LEFT - RIGHT
PLOT_H = HEIGHT - TOP - BOTTOM
X_TICKS = 4


class Dot(msgspec.Struct, frozen=True):
    x: float
    y: float


class Series(msgspec.Struct, frozen=True):
    name: str
    css: str
    """A CSS class for its colour (static/app.css: .series-0 …)."""
    lines: list[str]
    """SVG polyline `points` attributes, one per run of neighbouring values."""
    dots: list[Dot]
    """Values with no neighbour to join (drawn as dots)."""
    last: float | None


class Bar(msgspec.Struct, frozen=True):
    x: float
    y: float
    width: float
    height: float
    css: str


class Hover(msgspec.Struct, frozen=True):
    """A bucket's column: hovering it tells its time and values."""

    x: float
    width: float
    title: str


class Tick(msgspec.Struct, frozen=True):
    at: float
    """x (on the x axis) or y (on the y axis) in the viewBox."""
    label: str


class Chart(msgspec.Struct, frozen=True):
    id: str
    title: str
    unit: str
    top: float
    """The value at the top of the chart."""
    series: list[Series]
    bars: list[Bar]
    hovers: list[Hover]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    plot_top: int = TOP
    plot_bottom: int = TOP + PLOT_H
    plot_right: int = LEFT + PLOT_W


def _clock(at: float) -> str:
    """HH:MM:SS (UTC)."""
    return (iso(at) or "")[11:19]


def nice_top(value: float) -> float:
    """1, 2 or 5 times a power of ten, at least `value` (and at least 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)


def _x(index: int, count: int) -> float:
    """The centre of bucket `index` of `count`."""
    return LEFT + PLOT_W * (index + 0.5) / max(1, count)


def _y(value: float, top: float) -> float:
    return TOP + PLOT_H - PLOT_H * min(value, top) / top


def _number(value: float) -> str:
    return f"{value:,.1f}".removesuffix(".0") if value < 100 else f"{value:,.0f}"


def lines(values: Sequence[float | None], top: float) -> tuple[list[str], list[Dot]]:
    """Polylines through each run of neighbouring values, and the values alone as dots."""
    runs: list[list[tuple[float, float]]] = [[]]
    for i, value in enumerate(values):
        if value is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((_x(i, len(values)), _y(value, top)))
    joined = [" ".join(f"{x:.1f},{y:.1f}" for x, y in run) for run in runs if len(run) > 1]
    alone = [Dot(round(run[0][0], 1), round(run[0][1], 1)) for run in runs if len(run) == 1]
    return joined, alone


def _ticks(top: float, times: Sequence[int]) -> tuple[list[Tick], list[Tick]]:
    y_ticks = [Tick(round(_y(v, top), 1), _number(v)) for v in (0.0, top / 2, top)]
    count = len(times)
    picks = (
        sorted({round(i * (count - 1) / (X_TICKS - 1)) for i in range(X_TICKS)}) if count else []
    )
    x_ticks = [Tick(round(_x(i, count), 1), _clock(times[i])[:5]) for i in picks]
    return y_ticks, x_ticks


def _hovers(
    times: Sequence[int], bucket: int, unit: str, series: dict[str, Sequence[float | None]]
) -> list[Hover]:
    count, width = len(times), PLOT_W / max(1, len(times))
    made = []
    for i, at in enumerate(times):
        values = [
            f"{name} {_number(v)}" if (v := values[i]) is not None else f"{name} no data"
            for name, values in series.items()
        ]
        span = f"{_clock(at)} to {_clock(at + bucket)} UTC"
        made.append(
            Hover(
                round(_x(i, count) - width / 2, 1),
                round(width, 2),
                f"{span}: " + ", ".join(values) + f" ({unit})",
            )
        )
    return made


def _last(values: Sequence[float | None]) -> float | None:
    return next((v for v in reversed(values) if v is not None), None)


def chart(
    chart_id: str,
    title: str,
    unit: str,
    series: dict[str, Sequence[float | None]],
    times: Sequence[int],
    bucket: int,
) -> Chart:
    """A line chart of measures (None: no value in that bucket)."""
    highest = max((v for values in series.values() for v in values if v is not None), default=0)
    top = nice_top(highest)
    made = []
    for index, (name, values) in enumerate(series.items()):
        joined, alone = lines(values, top)
        made.append(Series(name, f"series-{index % 6}", joined, alone, _last(values)))
    y_ticks, x_ticks = _ticks(top, times)
    hovers = _hovers(times, bucket, unit, series)
    return Chart(chart_id, title, unit, top, made, [], hovers, y_ticks, x_ticks)


def bar_chart(
    chart_id: str,
    title: str,
    unit: str,
    series: dict[str, Sequence[float | None]],
    times: Sequence[int],
    bucket: int,
    css: Sequence[str] = (),
) -> Chart:
    """Stacked bars of counts per bucket (None: not counted yet); an empty bucket is empty.
    `css`: each series' class (default: .series-0 …)."""
    count = len(times)
    classes = [css[i] if i < len(css) else f"series-{i % 6}" for i in range(len(series))]
    totals = [sum(values[i] or 0 for values in series.values()) for i in range(count)]
    top = nice_top(max(totals, default=0))
    width = PLOT_W / max(1, count)
    bars = []
    for i in range(count):
        base = 0.0
        for index, values in enumerate(series.values()):
            value = values[i] or 0
            if value <= 0:
                continue
            y_top, y_base = _y(base + value, top), _y(base, top)
            bars.append(
                Bar(
                    round(_x(i, count) - width * 0.4, 2),
                    round(y_top, 2),
                    round(width * 0.8, 2),
                    round(max(0.8, y_base - y_top), 2),
                    classes[index],
                )
            )
            base += value
    made = [
        Series(name, classes[index], [], [], _last(values))
        for index, (name, values) in enumerate(series.items())
    ]
    y_ticks, x_ticks = _ticks(top, times)
    hovers = _hovers(times, bucket, unit, series)
    return Chart(chart_id, title, unit, top, made, bars, hovers, y_ticks, x_ticks)


def _done(values: list[float | None]) -> list[float | None]:
    """The last bucket is still filling up: no value for it yet."""
    return [*values[:-1], None] if values else values


def history_charts(history: History) -> list[Chart]:
    """The status page's charts: outcomes, success rate, latency, lag, sockets. The last
    bucket is still filling up: it counts for the sampled charts only."""
    points = history.points
    times = [p.at for p in points]
    bucket = history.bucket_seconds

    def per_second(count: int) -> float:
        return round(count / bucket, 2)

    outcomes: dict[str, Sequence[float | None]] = {
        "succeeded": _done([per_second(p.succeeded) for p in points]),
        "rejected": _done([per_second(p.rejected) for p in points]),
        "failed": _done([per_second(p.failed) for p in points]),
    }
    rate = _done([p.success_rate for p in points])
    consumers = sorted({name for p in points for name in p.lag})
    lagging = [name for name in consumers if any(p.lag.get(name) for p in points)]
    lag: dict[str, Sequence[float | None]] = {
        name: [float(p.lag.get(name, 0)) if p.lag else None for p in points] for name in lagging
    }
    if not lag:
        lag = {"every consumer": [0.0 if p.lag else None for p in points]}
    sockets: list[float | None] = [p.sockets for p in points]
    return [
        bar_chart(
            "throughput",
            "Commands finished",
            "commands/s",
            outcomes,
            times,
            bucket,
            [f"kind-{name}" for name in outcomes],
        ),
        chart(
            "success",
            "Success rate (rejections apart)",
            "% of succeeded + failed",
            {"succeeded": rate},
            times,
            bucket,
        ),
        chart(
            "latency",
            "Latency, accepted → finished",
            "ms",
            {
                "p50": _done([p.p50_ms for p in points]),
                "p99": _done([p.p99_ms for p in points]),
            },
            times,
            bucket,
        ),
        chart("lag", "Consumer lag", "entries not applied", lag, times, bucket),
        chart("sockets", "WebSocket connections", "open", {"sockets": sockets}, times, bucket),
    ]
