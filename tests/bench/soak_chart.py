"""The soak's memory over the minutes as one hand-written SVG: Redis `used_memory` of each
server and what its key families hold (the `data` ones, and those with a bound; estimated:
soak_sample) above, every process's RSS below.

    .venv/bin/python -m tests.bench.soak_chart soak.json docs/soak-memory.svg
"""

from __future__ import annotations

import math
import sys
from html import escape
from pathlib import Path

import msgspec

from tests.bench.soak_report import MiB, SoakRun, bounded_bytes, data_bytes

WIDTH, PANEL = 860, 300
LEFT, RIGHT, TOP, BOTTOM = 70, 200, 55, 45
COLOURS = (
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip

Series = dict[str, list[tuple[float, float]]]
"""name → (minute, MiB) points"""


def step_for(top: float) -> float:
    """A round tick step giving four to ten ticks up to `top`."""
    raw = max(top, 1e-9) / 5
    power = 10.0 ** math.floor(math.log10(raw))
    return next(float(s * power) for s in (1, 2, 5, 10) if s * power >= raw)


def panel(title: str, series: Series, minutes: float, y0: float) -> list[str]:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, PANEL - TOP - BOTTOM
    highest = max((v for points in series.values() for _, v in points), default=1.0)
    step = step_for(highest * 1.05)
    top = step * math.ceil(highest * 1.05 / step)
    x_step = step_for(minutes) if minutes > 10 else 1.0

    def x(minute: float) -> float:
        return LEFT + plot_w * minute / max(minutes, 1e-9)

    def y(value: float) -> float:
        return y0 + TOP + plot_h - plot_h * value / top

    out = [f'<text x="{LEFT}" y="{y0 + 22}" class="title">{escape(title)}</text>']
    for i in range(round(top / step) + 1):
        value = i * step
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(value):.1f}" '
                   f'y2="{y(value):.1f}" class="grid"/>')  # fmt: skip
        out.append(f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" class="tick" '
                   f'text-anchor="end">{value:g}</text>')  # fmt: skip
    for i in range(math.floor(minutes / x_step) + 1):
        minute = i * x_step
        out.append(f'<text x="{x(minute):.1f}" y="{y(0) + 16:.1f}" class="tick" '
                   f'text-anchor="middle">{minute:g}</text>')  # fmt: skip
    out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(0):.1f}" '
               f'y2="{y(0):.1f}" class="axis"/>')  # fmt: skip
    out.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{y(top):.1f}" y2="{y(0):.1f}" class="axis"/>')
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{y(0) + 34:.1f}" class="label" '
               'text-anchor="middle">minutes since the steady load started</text>')  # fmt: skip
    out.append(f'<text transform="translate(18 {y0 + TOP + plot_h / 2}) rotate(-90)" '
               'class="label" text-anchor="middle">MiB</text>')  # fmt: skip
    out.append(f'<text x="{WIDTH - RIGHT + 12}" y="{y0 + TOP - 10}" class="tick">'
               "(MiB at the end)</text>")  # fmt: skip
    for index, (name, points) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        dash = ' stroke-dasharray="6 3"' if index >= len(COLOURS) else ""
        path = " ".join(f"{x(m):.1f},{y(v):.1f}" for m, v in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                   f'stroke-width="2"{dash}/>')  # fmt: skip
        ly = y0 + TOP + 6 + 18 * index
        out.append(f'<line x1="{WIDTH - RIGHT + 12}" x2="{WIDTH - RIGHT + 34}" y1="{ly}" '
                   f'y2="{ly}" stroke="{colour}" stroke-width="3"{dash}/>')  # fmt: skip
        last = points[-1][1] if points else 0.0
        out.append(f'<text x="{WIDTH - RIGHT + 40}" y="{ly + 4}" class="legend">'
                   f'{escape(name)} ({last:,.0f})</text>')  # fmt: skip
    return out


def memory_series(run: SoakRun) -> Series:
    series: Series = {}
    for sample in run.samples:
        for label, server in sample.servers.items():
            series.setdefault(f"{label} side" if label == "write" else "read models", []).append(
                (sample.minute, server.used_memory / MiB)
            )
        series.setdefault("data families", []).append((sample.minute, data_bytes(sample) / MiB))
        series.setdefault("bounded families", []).append(
            (sample.minute, bounded_bytes(sample) / MiB)
        )
    return series


def rss_series(run: SoakRun) -> Series:
    series: Series = {}
    for sample in run.samples:
        for process in sample.processes:
            series.setdefault(process.name, []).append((sample.minute, process.rss / MiB))
    return series


def svg(run: SoakRun) -> str:
    minutes = max((s.minute for s in run.samples), default=1.0)
    title = (
        f"Soak: {run.rate:g} orders/s for {minutes:.0f} min; "
        f"STATUS_TTL_SECONDS={run.settings.status_ttl}, retention {run.settings.retention} s"
    )
    body = [
        *panel(f"{title}: Redis used_memory", memory_series(run), minutes, 0),
        *panel("Resident memory (RSS) of each process", rss_series(run), minutes, PANEL),
    ]
    style = (
        "text{font-family:sans-serif;fill:#222}.title{font-size:14px;font-weight:bold}"
        ".tick{font-size:11px}.label{font-size:12px}.legend{font-size:12px}"
        ".grid{stroke:#ddd;stroke-width:1}.axis{stroke:#444;stroke-width:1}"
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{2 * PANEL}" '
        f'viewBox="0 0 {WIDTH} {2 * PANEL}" font-size="12">\n'
        f'<rect width="100%" height="100%" fill="white"/>\n<style>{style}</style>\n'
        + "\n".join(body)
        + "\n</svg>\n"
    )


def write_chart(run: SoakRun, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(svg(run))


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    run = msgspec.json.decode(Path(sys.argv[1]).read_bytes(), type=SoakRun)
    write_chart(run, Path(sys.argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
