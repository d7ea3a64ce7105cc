"""The status page's history: the last half hour in 10-s buckets (app/observability/history.py)."""

from __future__ import annotations

import time

import msgspec

from app.kernel import keys
from app.kernel.read_side import ReadSide, summed
from app.kernel.redis_types import text_dict
from app.observability.history import BUCKET_SECONDS, buckets, commands_key, quantile_ms


class HistoryPoint(msgspec.Struct, frozen=True):
    at: int
    """The bucket's start (s since the epoch)."""
    succeeded: int
    rejected: int
    """Refused by a business rule (app/kernel/outcomes.py)."""
    failed: int
    p50_ms: float | None
    p99_ms: float | None
    lag: dict[str, int]
    """Entries each consumer had not applied when sampled (none: not sampled)."""
    sockets: int | None
    """Open WebSockets, all web processes (None: not sampled)."""

    @property
    def finished(self) -> int:
        return self.succeeded + self.rejected + self.failed

    @property
    def success_rate(self) -> float | None:
        """succeeded / (succeeded + failed), in %; None without either."""
        judged = self.succeeded + self.failed
        return round(100 * self.succeeded / judged, 1) if judged else None


class History(msgspec.Struct, frozen=True):
    bucket_seconds: int
    points: list[HistoryPoint]


def point(at: int, counts: dict[str, str], samples: dict[str, str]) -> HistoryPoint:
    bins = {k: int(v) for k, v in counts.items() if k.startswith("lat:")}
    sockets = [int(v) for k, v in samples.items() if k.startswith("ws:")]
    return HistoryPoint(
        at=at,
        succeeded=int(counts.get("succeeded", 0)),
        rejected=int(counts.get("rejected", 0)),
        failed=int(counts.get("failed", 0)),
        p50_ms=quantile_ms(bins, 0.5),
        p99_ms=quantile_ms(bins, 0.99),
        lag={k[4:]: int(float(v)) for k, v in samples.items() if k.startswith("lag:")},
        sockets=sum(sockets) if sockets else None,
    )


async def history(read: ReadSide, now: float | None = None) -> History:
    """The command log's buckets added up over the partitions, with the samples taken."""
    wanted = buckets(time.time() if now is None else now)
    async with read.redis.pipeline(transaction=False) as pipe:
        for bucket in wanted:
            pipe.hgetall(keys.history_samples(bucket))
            for partition in range(read.partitions):
                pipe.hgetall(commands_key(partition, bucket))
        replies = await pipe.execute()
    step = 1 + read.partitions
    return History(
        BUCKET_SECONDS,
        [
            point(
                bucket,
                {k: str(v) for k, v in summed(replies[step * i + 1 : step * (i + 1)]).items()},
                text_dict(replies[step * i]),
            )
            for i, bucket in enumerate(wanted)
        ],
    )
