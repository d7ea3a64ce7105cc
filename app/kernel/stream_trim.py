"""Streams trimmed once their consumer groups are done with them (XTRIM MINID).

A queue's entry is needed until its group acknowledged it: the command queues are trimmed up
to there. A stream that readers outside the groups may want keeps its acknowledged entries
for a retention first (the integration streams: `INTEGRATION_RETENTION_SECONDS`). An entry a
group still needs — not delivered to it yet, or delivered and not acknowledged — is never
trimmed, whatever its age (see trim_consumed.lua).

A handler asks for it with `retention_seconds` (float); the partition's owner then trims at
most every TRIM_EVERY_SECONDS, in the pipeline of a read it sends anyway (no round trip of
its own). Handlers without it (the events streams: the archive trims those) are left alone.
"""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

from app.kernel.scripts import load_script

log = logging.getLogger(__name__)

TRIM_EVERY_SECONDS = 1.0
_TRIM = load_script(__file__, "trim_consumed.lua")


def kept_from(retention_seconds: float, now: float) -> str:
    """The first entry id the retention keeps ("" for none: no retention). By the trimming
    process's clock: one behind or ahead of the server's only moves when an acknowledged
    entry goes, never whether an entry a group needs does."""
    if retention_seconds <= 0:
        return ""
    return f"{max(0, int((now - retention_seconds) * 1000))}-0"


async def trim_consumed(redis: Redis, stream: str, retention_seconds: float = 0.0) -> int:
    """Trim what every group of `stream` is done with (and is older than the retention)."""
    trimmed = await _TRIM(redis, [stream], [kept_from(retention_seconds, time.time())])
    return int(trimmed)


class ConsumedTrim:
    """One partition owner's trimming of its stream: when it is due, and the script call."""

    def __init__(self, retention_seconds: float, every: float = TRIM_EVERY_SECONDS) -> None:
        self.retention_seconds = retention_seconds
        self._every = every
        self._at = 0.0

    @classmethod
    def of(cls, handler: object) -> ConsumedTrim | None:
        """The trimming a handler asks for (`retention_seconds`), or None."""
        retention = getattr(handler, "retention_seconds", None)
        return cls(float(retention)) if retention is not None else None

    def due(self) -> bool:
        return time.monotonic() - self._at >= self._every

    def queue(self, pipe: Pipeline, stream: str) -> None:
        self._at = time.monotonic()
        _TRIM.queue(pipe, [stream], [kept_from(self.retention_seconds, time.time())])

    async def answered(self, redis: Redis, stream: str, reply: object) -> None:
        """A queued trim's reply: a server that did not know the script learns it (the next
        trim runs); any other failure is logged — trimming waits, consuming goes on."""
        if isinstance(reply, NoScriptError):
            await redis.script_load(_TRIM.source)
        elif isinstance(reply, Exception):
            log.warning("trimming %s failed: %s", stream, reply)
