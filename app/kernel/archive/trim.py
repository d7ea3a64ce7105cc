"""Trimming a partition's stream: never an entry that is not archived, that a consumer group
still needs (pending, or not yet delivered), that a reader holds, or younger than retention,
nor the stream's last entry. One script (trim.lua) takes the smallest of those and runs
XTRIM MINID."""

from __future__ import annotations

from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.archive.groups import acknowledged_end, following
from app.kernel.positions import parse_stream_id
from app.kernel.redis_types import text
from app.kernel.scripts import load_script

_SCRIPT = load_script(__file__, "trim.lua")


async def trim(
    redis: Redis, stream: str, partition: int, archived: str, retention_ms: int
) -> tuple[int, str]:
    """Trim `stream` (partition `partition`) before the entry after `archived` at most;
    (entries trimmed, the MINID used)."""
    keep_from = following(archived)
    acknowledged = await acknowledged_end(redis, stream)
    if acknowledged is not None:
        keep_from = min(keep_from, following(acknowledged), key=parse_stream_id)
    trimmed, minid = await _SCRIPT(
        redis, [stream, keys.archive_holds(partition)], [keep_from, retention_ms]
    )
    return int(trimmed), text(minid)
