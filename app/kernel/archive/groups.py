"""How far every consumer group of a stream has acknowledged: the end of what may be archived.

Per group, the smaller of its last-delivered id and the entry before its oldest pending one;
over the stream, the smallest of those (XINFO GROUPS, then XPENDING of the groups with
pending entries: every call names the one stream, so one Cluster slot).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from app.kernel.positions import format_stream_id, parse_stream_id

MAX_SEQUENCE = 2**64 - 1


def before(entry_id: str) -> str:
    """The greatest id below `entry_id` (ids need not exist)."""
    ms, seq = parse_stream_id(entry_id)
    if seq > 0:
        return format_stream_id((ms, seq - 1))
    return format_stream_id((ms - 1, MAX_SEQUENCE)) if ms > 0 else "0-0"


def following(entry_id: str) -> str:
    """The smallest id above `entry_id`."""
    ms, seq = parse_stream_id(entry_id)
    return format_stream_id((ms, seq + 1) if seq < MAX_SEQUENCE else (ms + 1, 0))


async def acknowledged_end(redis: Redis, stream: str) -> str | None:
    """The last entry every group has acknowledged ("0-0": none yet); None when the stream
    has no consumer group (nothing to wait for)."""
    try:
        groups: list[dict[str, Any]] = await redis.xinfo_groups(stream)
    except ResponseError:  # no such stream yet
        return "0-0"
    if not groups:
        return None
    return await groups_reached(redis, stream, groups)


async def groups_reached(redis: Redis, stream: str, groups: list[dict[str, Any]]) -> str:
    """Where every one of `groups` (XINFO GROUPS entries, at least one) has got to: the
    smallest of each one's last-delivered id and the entry before its oldest pending one."""
    ends = [str(g["last-delivered-id"]) for g in groups]
    pending = [str(g["name"]) for g in groups if int(g.get("pending") or 0)]
    if pending:
        async with redis.pipeline(transaction=False) as pipe:
            for group in pending:
                pipe.xpending(stream, group)
            summaries = await pipe.execute()
        ends += [before(str(s["min"])) for s in summaries if s and s.get("min")]
    return min(ends, key=parse_stream_id)
