"""Latency arithmetic: percentiles, summaries, step gaps, and commit times inside positions."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from datetime import datetime

import msgspec

from app.kernel.positions import parse

STEPS = ("accepted", "processing", "stock_reserved", "payment_captured", "succeeded", "failed")
ARROW = " → "


class Summary(msgspec.Struct, frozen=True):
    """Milliseconds; the percentiles are None when there were no samples."""

    count: int
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks of an already sorted, non-empty sequence."""
    if not ordered:
        raise ValueError("percentile of no values")
    rank = fraction * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: Iterable[float]) -> Summary:
    ordered = sorted(values)
    if not ordered:
        return Summary(0, None, None, None, None)
    return Summary(
        len(ordered),
        round(percentile(ordered, 0.50), 2),
        round(percentile(ordered, 0.90), 2),
        round(percentile(ordered, 0.99), 2),
        round(ordered[-1], 2),
    )


def commit_ms(position: str | None) -> int | None:
    """The newest commit time (ms of the Redis server clock) named by a position token
    (`partition:<ms>-<seq>`, comma-separated); None if there is none or it is not a position."""
    try:
        stream_ids = parse(position or "")
    except ValueError:
        return None
    return max(ms for ms, _ in stream_ids.values())


def epoch(instant: str) -> float:
    """Epoch seconds of an ISO 8601 instant such as `2026-01-02T03:04:05.678Z`."""
    return datetime.fromisoformat(instant).timestamp()


def step_gaps(steps: Sequence[tuple[str, str | None]]) -> list[tuple[str, float]]:
    """("accepted → processing", ms) for each pair of consecutive recorded steps; a step
    missing (e.g. no `processing` for a fast command) makes the gap span it."""
    timed = [(name, epoch(at)) for name, at in steps if at]
    return [
        (f"{before}{ARROW}{after}", (then - at) * 1000)
        for (before, at), (after, then) in itertools.pairwise(timed)
    ]


def transition_order(transition: str) -> tuple[int, int]:
    """Sort key putting transitions in pipeline order (unknown step names last)."""
    before, _, after = transition.partition(ARROW)

    def rank(name: str) -> int:
        return STEPS.index(name) if name in STEPS else len(STEPS)

    return rank(before), rank(after)
