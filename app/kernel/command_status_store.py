"""Where command statuses are kept: the status scripts, and the one reader of statuses.

Accepting a queued command (`enqueue.lua`) and moving a running one forward (`advance.lua`)
are scripts of their own; every other status write rides in a commit (kernel/commit.py),
chosen in kernel/command_status.py. Every status read, one or many, is `read`: one pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from redis.asyncio import Redis

from app.kernel import keys, tracing
from app.kernel.coalescer import Coalescer
from app.kernel.command_status import QueuePlace, StoredStatus, status_view, step_json
from app.kernel.commit import NOTICES_MAXLEN
from app.kernel.idempotency import IdempotencyRecord, IdempotencySlot, decode_record
from app.kernel.messages import FINAL_STATUSES, CommandEnvelope
from app.kernel.notices import STATUS_NOTICE_FIELDS
from app.kernel.replication import NO_WAIT, Replication, confirm
from app.kernel.scripts import Args, load_script, run_calls

_ENQUEUE = load_script(
    __file__, "enqueue.lua", STATUS_NOTICE=STATUS_NOTICE_FIELDS, TRACE_FIELD=tracing.FIELD
)
_ADVANCE = load_script(
    __file__, "advance.lua", FINAL_STATUSES=FINAL_STATUSES, STATUS_NOTICE=STATUS_NOTICE_FIELDS
)


@dataclass(frozen=True)
class Enqueued:
    """What accepting a queued command came to."""

    accepted: bool
    """False: this command id was accepted before; nothing was written."""
    claimed_by: IdempotencyRecord | None = None
    """The Idempotency-Key was claimed before, by this record; nothing was written."""


class CommandStatusStore:
    def __init__(self, redis: Redis, ttl_seconds: int, replication: Replication = NO_WAIT) -> None:
        """`replication`: the replicas an acceptance waits for before it is answered."""
        self._redis = redis
        self._ttl = ttl_seconds
        self._replication = replication
        self._enqueues: Coalescer[tuple[list[str], Args], Any] = Coalescer(self._enqueue_all)

    async def _enqueue_all(self, calls: list[tuple[list[str], Args]]) -> list[Any]:
        """Commands accepted at the same moment share one round trip (and its WAITs)."""
        return await run_calls(self._redis, _ENQUEUE, calls, self._replication)

    async def confirm(self, partition: int, command_id: str) -> None:
        """With replication on: a command's status (and all written before it on its node:
        its acceptance or its commit) is on the replicas, before a retry is answered from it.
        Raises ReplicationTimeout if it is not, in time."""
        await confirm(
            self._redis,
            self._replication,
            [(keys.command_status(partition, command_id), self._ttl)],
        )

    async def enqueue(
        self,
        partition: int,
        envelope: CommandEnvelope,
        *,
        idempotency: tuple[IdempotencySlot, IdempotencyRecord, int] | None = None,
        place: QueuePlace | None = None,
    ) -> Enqueued:
        """Status `accepted`, the queue entry and the Idempotency-Key claim, in one script.

        `idempotency`: (slot, record, TTL). On a Cluster the slot must be the command's
        partition (a script touches one slot); one server takes any.
        """
        fields = {
            "type": envelope.type,
            "sender": envelope.sender or "",
            "status": "accepted",
            "accepted_at": str(envelope.accepted_at),
            "queued": "1",
        }
        if place is not None:
            fields["queue"] = msgspec.json.encode(place).decode()
        command_keys = [
            keys.command_status(partition, envelope.command_id),
            keys.command_steps(partition, envelope.command_id),
            keys.commands(partition),
            keys.status_notices(partition),
            keys.dedup(partition, envelope.command_id),
            keys.queue_counters(partition),
        ]
        args: list[str | int] = [
            envelope.command_id,
            msgspec.json.encode(fields).decode(),
            step_json("accepted", envelope.accepted_at),
            msgspec.json.encode(envelope).decode(),
            self._ttl,
            NOTICES_MAXLEN,
            envelope.traceparent,
        ]
        if idempotency is not None:
            slot, record, ttl = idempotency
            command_keys.append(slot.key)
            args += [msgspec.json.encode(record).decode(), ttl]
        (reply,) = await self._enqueues.submit([(command_keys, args)])
        if isinstance(reply, Exception):
            raise reply
        if reply[0] == "claimed":
            return Enqueued(False, decode_record(reply[1]))
        return Enqueued(reply[0] == "accepted")

    async def advance(
        self,
        partition: int,
        command_ids: list[str],
        *,
        step: str = "",
        fields: dict[str, str] | None = None,
        only_from: str = "",
    ) -> int:
        """Move running commands forward (one round trip); returns how many changed."""
        replies = await run_calls(
            self._redis,
            _ADVANCE,
            [
                (
                    [
                        keys.command_status(partition, command_id),
                        keys.command_steps(partition, command_id),
                        keys.status_notices(partition),
                    ],
                    [
                        command_id,
                        msgspec.json.encode(fields or {}).decode(),
                        step_json(step) if step else "",
                        only_from,
                        NOTICES_MAXLEN,
                    ],
                )
                for command_id in command_ids
            ],
        )
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return sum(int(reply) for reply in replies)

    async def start_processing(self, partition: int, command_ids: list[str]) -> int:
        return await self.advance(
            partition,
            command_ids,
            step="processing",
            fields={"status": "processing"},
            only_from="accepted",
        )

    async def report_progress(self, partition: int, command_id: str, done: int, total: int) -> None:
        await self.advance(
            partition,
            [command_id],
            fields={"progress_done": str(done), "progress_total": str(total)},
        )

    async def get(self, partition: int, command_id: str) -> StoredStatus | None:
        (found,) = await self.read([(partition, command_id)])
        return found

    async def read(self, located: Sequence[tuple[int | None, str]]) -> list[StoredStatus | None]:
        """The statuses of several commands, (partition, command id) each, in one round trip
        (None: no such command, or a partition that names none)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for partition, command_id in located:
                if partition is not None:
                    pipe.hgetall(keys.command_status(partition, command_id))
                    pipe.lrange(keys.command_steps(partition, command_id), 0, -1)
            replies = iter(await pipe.execute())
        found: list[StoredStatus | None] = []
        for partition, command_id in located:
            record, steps = (next(replies), next(replies)) if partition is not None else ({}, [])
            found.append(
                StoredStatus(record.get("sender", ""), status_view(command_id, record, steps))
                if record
                else None
            )
        return found
