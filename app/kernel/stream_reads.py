"""Reading a partition's stream as a consumer group: batches, and acknowledgements that
ride with the next read (XACK + XREADGROUP in one round trip). Every call names one stream,
so it runs on Redis Cluster too.

With replication on (REDIS_WAIT_REPLICAS), the read ends with a WAIT in the same round trip:
XREADGROUP writes (it records the delivery), so once its WAIT is answered the replicas hold
every entry it delivered. A consumer thus never acts on an event a failover could still take
back — a read model never shows, and a process never follows, an event that is then lost and
written again differently under the same version."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from app.kernel.handlers import Entry, PartitionHandler
from app.kernel.redis_types import stream_entries
from app.kernel.replication import NO_WAIT, Replication, add_waits, settle
from app.kernel.stream_trim import ConsumedTrim


async def ensure_group(redis: Redis, stream: str, group: str) -> None:
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def parse_entries(partition: int, reply: object) -> list[Entry]:
    return [Entry(entry_id, partition, fields) for _, entry_id, fields in stream_entries(reply)]


async def acknowledge(
    redis: Redis, handler: PartitionHandler, partition: int, ids: list[str]
) -> None:
    if ids:
        await redis.xack(handler.stream(partition), handler.group, *ids)


async def read_batch(
    redis: Redis,
    group: str,
    consumer: str,
    stream: str,
    cursor: str,
    acks: list[str],
    *,
    count: int,
    block: int | None,
    trim: ConsumedTrim | None = None,
    replication: Replication = NO_WAIT,
) -> object:
    """The next batch after `cursor` (blocking up to `block` ms for new entries),
    acknowledging `acks` and trimming what the groups are done with (when due) on the way;
    with `replication` on, only once the replicas hold what it delivered."""
    due = trim if trim is not None and trim.due() else None
    if not acks and due is None and not replication.on:
        return await redis.xreadgroup(group, consumer, {stream: cursor}, count=count, block=block)
    async with redis.pipeline(transaction=False) as pipe:
        if acks:
            pipe.xack(stream, group, *acks)
        if due is not None:
            due.queue(pipe, stream)
        pipe.xreadgroup(group, consumer, {stream: cursor}, count=count, block=block)
        waits = await add_waits(redis, pipe, replication, [stream])
        *replies, reply = settle(
            redis, replication, waits, await pipe.execute(raise_on_error=False)
        )
    if due is not None:
        await due.answered(redis, stream, replies.pop())
    for failed in (r for r in (*replies, reply) if isinstance(r, Exception)):
        raise failed
    return reply
