"""The status page's history: what the pipeline did, per 10-s bucket, for the last half hour.

Two writers fill each bucket, both in Redis (the read server), each bucket expiring after
KEEP_SECONDS:
* the command log, as it applies the journal: finished commands by outcome and a histogram of
  their accepted → finished latency (`rm:command_log:{pN}:history:<bucket>`, part of that read
  model, so a rebuild makes it again from the journal);
* every web process, each BUCKET_SECONDS: its open sockets, and (the first one to get there)
  each consumer's lag (`history:samples:<bucket>`; history_sampler.py).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from app.kernel import keys

BUCKET_SECONDS = 10
WINDOW_SECONDS = 30 * 60
KEEP_SECONDS = 60 * 60
LATENCY_BINS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000)
"""Upper bounds of the latency histogram's bins (ms); past the last: `lat:inf`."""


def bucket_of(at: float) -> int:
    return int(at // BUCKET_SECONDS) * BUCKET_SECONDS


def latency_field(ms: float) -> str:
    index = bisect.bisect_left(LATENCY_BINS_MS, ms)
    return f"lat:{LATENCY_BINS_MS[index]}" if index < len(LATENCY_BINS_MS) else "lat:inf"


def commands_key(partition: int, bucket: int) -> str:
    """A bucket's finished commands of one partition's journal (the query sums partitions)."""
    return keys.read_model("command_log", partition, "history", str(bucket))


def quantile_ms(bins: dict[str, int], fraction: float) -> float | None:
    """The latency below which `fraction` of the bucket's commands finished, interpolated
    within its bin (the last bin counts as its lower bound)."""
    total = sum(bins.values())
    if not total:
        return None
    wanted = fraction * total
    seen, lower = 0, 0.0
    for upper in LATENCY_BINS_MS:
        count = bins.get(f"lat:{upper}", 0)
        if count and seen + count >= wanted:
            return round(lower + (upper - lower) * (wanted - seen) / count, 1)
        seen += count
        lower = float(upper)
    return lower


def buckets(now: float, window: int = WINDOW_SECONDS) -> Sequence[int]:
    """The buckets of the window ending now, oldest first (the current one is partial)."""
    last = bucket_of(now)
    return range(last - window + BUCKET_SECONDS, last + BUCKET_SECONDS, BUCKET_SECONDS)
