"""A command's status record: accepted → [processing] → succeeded | failed, with steps.

This module is the status's one home: it builds every status write (the commit applies
them atomically with the command's effects) and runs the status scripts of its own —
accepting a queued command, and moving a running one forward.

A fast command goes from `accepted` to its outcome in its commit. `processing` is written
only for work a person can see running: a process that goes on after the commit (PlaceOrder),
a long runner (ImportCatalog), or a batch the worker is slow to finish.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from redis.asyncio import Redis

from app.kernel import keys, tracing
from app.kernel.clock import iso, now
from app.kernel.coalescer import Coalescer
from app.kernel.commit import NOTICES_MAXLEN, StatusWrite
from app.kernel.idempotency import IdempotencyRecord, IdempotencySlot, decode_record
from app.kernel.messages import FINAL_STATUSES, CommandEnvelope, Delivery, Problem, Step
from app.kernel.notices import STATUS_NOTICE_FIELDS
from app.kernel.scripts import Args, load_script, run_calls

FINAL = FINAL_STATUSES
"""The statuses a command ends in (declared in kernel/messages.py, where commit.py can see it)."""
POSITION = "$position"
"""A status field value the commit replaces with its position."""

_step_decoder = msgspec.json.Decoder(Step)
_problem_decoder = msgspec.json.Decoder(Problem)
_ENQUEUE = load_script(
    __file__, "enqueue.lua", STATUS_NOTICE=STATUS_NOTICE_FIELDS, TRACE_FIELD=tracing.FIELD
)
_ADVANCE = load_script(
    __file__, "advance.lua", FINAL_STATUSES=FINAL_STATUSES, STATUS_NOTICE=STATUS_NOTICE_FIELDS
)


class StepView(msgspec.Struct, frozen=True):
    name: str
    at: str | None


class Progress(msgspec.Struct, frozen=True):
    done: int
    total: int


class QueuePlace(msgspec.Struct, frozen=True):
    """Where a queued command stood when it was accepted: commands ahead, and an estimate."""

    ahead: int
    estimate_seconds: float | None


class CommandStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The public shape of GET /api/commands/<id> (the sender is not part of it)."""

    command_id: str
    type: str
    status: str
    accepted_at: str | None
    completed_at: str | None
    steps: list[StepView]
    progress: Progress | None
    error: Problem | None
    position: str | None
    queue: QueuePlace | None = None


class StoredStatus(msgspec.Struct, frozen=True):
    sender: str
    view: CommandStatus


class StatusChange(msgspec.Struct, frozen=True):
    """A step of a long-running command, and maybe its end (e.g. from its aggregate's events)."""

    step: str = ""
    status: Literal["succeeded", "failed"] | None = None
    error: Problem | None = None


def step_json(name: str, at: float | None = None) -> str:
    return msgspec.json.encode(Step(name, now() if at is None else at)).decode()


# --- the writes a commit carries -----------------------------------------------------------


def _opening(env: CommandEnvelope, delivery: Delivery) -> tuple[dict[str, str], list[str]]:
    """A command run inline has no record yet: its commit creates it, `accepted` step first."""
    fields = {"type": env.type, "sender": env.sender or "", "accepted_at": str(env.accepted_at)}
    steps = [step_json("accepted", env.accepted_at)] if delivery == "inline" else []
    return fields, steps


def finished(
    env: CommandEnvelope,
    status: Literal["succeeded", "failed"],
    error: Problem | None,
    delivery: Delivery,
    at: float | None = None,
) -> StatusWrite:
    fields, steps = _opening(env, delivery)
    at = now() if at is None else at
    fields.update(status=status, completed_at=str(at), position=POSITION)
    if error is not None:
        fields.update(error=msgspec.json.encode(error).decode(), error_code=error.code)
    steps.append(step_json(status, at))
    return StatusWrite(id=env.command_id, fields=fields, steps=steps, final=True)


def running(env: CommandEnvelope, step: str, delivery: Delivery) -> StatusWrite:
    """The command goes on after its commit (a process will finish it): `processing`."""
    fields, steps = _opening(env, delivery)
    fields.update(status="processing", position=POSITION)
    steps.append(step_json(step or "processing"))
    return StatusWrite(id=env.command_id, fields=fields, steps=steps)


def changed(command_id: str, change: StatusChange, at: float) -> StatusWrite:
    """A step (or the end) of another command, committed with the events that caused it."""
    fields = {"position": POSITION}
    steps = [step_json(change.step, at)] if change.step else []
    if change.status is not None:
        fields.update(status=change.status, completed_at=str(at))
        if change.error is not None:
            fields.update(
                error=msgspec.json.encode(change.error).decode(), error_code=change.error.code
            )
        steps.append(step_json(change.status, at))
    return StatusWrite(id=command_id, fields=fields, steps=steps, final=change.status is not None)


# --- the store -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Enqueued:
    """What accepting a queued command came to."""

    accepted: bool
    """False: this command id was accepted before; nothing was written."""
    claimed_by: IdempotencyRecord | None = None
    """The Idempotency-Key was claimed before, by this record; nothing was written."""


class CommandStatusStore:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._enqueues: Coalescer[tuple[list[str], Args], Any] = Coalescer(self._enqueue_all)

    async def _enqueue_all(self, calls: list[tuple[list[str], Args]]) -> list[Any]:
        """Commands accepted at the same moment share one round trip."""
        return await run_calls(self._redis, _ENQUEUE, calls)

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
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.command_status(partition, command_id))
            pipe.lrange(keys.command_steps(partition, command_id), 0, -1)
            record, steps = await pipe.execute()
        if not record:
            return None
        return StoredStatus(
            sender=record.get("sender", ""), view=status_view(command_id, record, steps)
        )


_place_decoder = msgspec.json.Decoder(QueuePlace)


def status_view(command_id: str, record: dict[str, str], steps: list[str]) -> CommandStatus:
    progress = None
    if record.get("progress_total"):
        progress = Progress(int(record.get("progress_done", "0")), int(record["progress_total"]))
    error = record.get("error")
    queue = record.get("queue")
    status = record.get("status", "accepted")
    return CommandStatus(
        command_id=command_id,
        type=record.get("type", ""),
        status=status,
        accepted_at=iso(record.get("accepted_at")),
        completed_at=iso(record.get("completed_at")),
        steps=[StepView(s.name, iso(s.at)) for s in map(_step_decoder.decode, steps)],
        progress=progress,
        error=_problem_decoder.decode(error) if error else None,
        position=record.get("position") or None,
        queue=_place_decoder.decode(queue) if queue and status not in FINAL else None,
    )
