"""The projector pass's consumer group, and how it takes over from one group per read model.

A deployment that ran one group per read model (`projection.<name>`) on a stream moves to
the pass without replaying or skipping anything: the pass's group is made where the slowest
of those groups had got to (the smaller of its last-delivered id and the entry before its
oldest pending one), and each read model's own checkpoint skips what it had applied. The
old groups are then dropped — each only while nobody holds its lease (a projector of the
old kind still running keeps its group; the next owner of the partition drops it later), so
the archive, which waits for every group of a stream, is not held back by them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from app.kernel.archive.groups import groups_reached
from app.kernel.archive.manifest import START

log = logging.getLogger(__name__)

PASS_GROUP_PREFIX = "projector."


def pass_group(stream: str) -> str:
    """The pass's group on a partition's stream: `{p3}:events` → `projector.events`."""
    return PASS_GROUP_PREFIX + stream.rpartition("}:")[2]


async def take_over_groups(
    redis: Redis, stream: str, group: str, old_groups: Mapping[str, str]
) -> str:
    """Make `group` on `stream` unless it exists, from where the `old_groups` (group → its
    lease key) had all got to (the start without any), and drop the old groups nobody
    holds a lease on. Returns the last entry delivered to `group`."""
    try:
        found: dict[str, dict[str, Any]] = {
            str(g["name"]): g for g in await redis.xinfo_groups(stream)
        }
    except ResponseError:  # no such stream yet
        found = {}
    old = [name for name in old_groups if name in found]
    delivered = str(found[group]["last-delivered-id"]) if group in found else START
    if group not in found:
        start = delivered = await _reached(redis, stream, [found[name] for name in old])
        try:
            await redis.xgroup_create(stream, group, id=start, mkstream=True)
            if old:
                log.info("%s: %s made at %s, where %s had got to", stream, group, start, old)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
    if not old:
        return delivered
    async with redis.pipeline(transaction=False) as pipe:
        for name in old:
            pipe.exists(old_groups[name])
        held = await pipe.execute()
    for name, leased in zip(old, held, strict=True):
        if not leased:
            await redis.xgroup_destroy(stream, name)
            log.info("%s: dropped %s (the projector's pass reads for it)", stream, name)
    return delivered


async def _reached(redis: Redis, stream: str, groups: list[dict[str, Any]]) -> str:
    """Where every one of `groups` had got to: the smallest of each one's last-delivered id
    and the entry before its oldest pending one (START for none)."""
    if not groups:
        return START
    return await groups_reached(redis, stream, groups)
