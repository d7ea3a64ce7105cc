"""A command's status record: accepted → processing → succeeded | failed, with steps."""

from __future__ import annotations

import msgspec
from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.clock import iso, now
from app.kernel.commit import NOTICES_MAXLEN
from app.kernel.messages import CommandEnvelope, Problem, Step
from app.kernel.scripts import load_script

FINAL = frozenset({"succeeded", "failed"})

_step_decoder = msgspec.json.Decoder(Step)
_problem_decoder = msgspec.json.Decoder(Problem)


class StepView(msgspec.Struct, frozen=True):
    name: str
    at: str | None


class Progress(msgspec.Struct, frozen=True):
    done: int
    total: int


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


class StoredStatus(msgspec.Struct, frozen=True):
    sender: str
    view: CommandStatus


def step_json(name: str, at: float | None = None) -> str:
    return msgspec.json.encode(Step(name, now() if at is None else at)).decode()


class CommandStatusStore:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._enqueue = load_script(redis, __file__, "enqueue.lua")
        self._advance = load_script(redis, __file__, "advance.lua")

    async def enqueue(self, partition: int, envelope: CommandEnvelope) -> bool:
        """Status `accepted` and the queue entry, in one script. False if already accepted."""
        fields = {
            "type": envelope.type,
            "sender": envelope.sender or "",
            "status": "accepted",
            "accepted_at": str(envelope.accepted_at),
        }
        accepted = await self._enqueue(
            keys=[
                keys.command_status(partition, envelope.command_id),
                keys.command_steps(partition, envelope.command_id),
                keys.commands(partition),
                keys.status_notices(partition),
                keys.dedup(partition, envelope.command_id),
            ],
            args=[
                envelope.command_id,
                msgspec.json.encode(fields).decode(),
                step_json("accepted", envelope.accepted_at),
                msgspec.json.encode(envelope).decode(),
                self._ttl,
                NOTICES_MAXLEN,
            ],
        )
        return bool(accepted)

    async def advance(
        self,
        partition: int,
        command_id: str,
        *,
        step: str = "",
        fields: dict[str, str] | None = None,
        only_from: str = "",
    ) -> bool:
        changed = await self._advance(
            keys=[
                keys.command_status(partition, command_id),
                keys.command_steps(partition, command_id),
                keys.status_notices(partition),
            ],
            args=[
                command_id,
                msgspec.json.encode(fields or {}).decode(),
                step_json(step) if step else "",
                only_from,
                NOTICES_MAXLEN,
            ],
        )
        return bool(changed)

    async def start_processing(self, partition: int, command_id: str) -> bool:
        return await self.advance(
            partition,
            command_id,
            step="processing",
            fields={"status": "processing"},
            only_from="accepted",
        )

    async def report_progress(self, partition: int, command_id: str, done: int, total: int) -> None:
        await self.advance(
            partition, command_id, fields={"progress_done": str(done), "progress_total": str(total)}
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


def status_view(command_id: str, record: dict[str, str], steps: list[str]) -> CommandStatus:
    progress = None
    if record.get("progress_total"):
        progress = Progress(int(record.get("progress_done", "0")), int(record["progress_total"]))
    error = record.get("error")
    return CommandStatus(
        command_id=command_id,
        type=record.get("type", ""),
        status=record.get("status", "accepted"),
        accepted_at=iso(record.get("accepted_at")),
        completed_at=iso(record.get("completed_at")),
        steps=[StepView(s.name, iso(s.at)) for s in map(_step_decoder.decode, steps)],
        progress=progress,
        error=_problem_decoder.decode(error) if error else None,
        position=record.get("position") or None,
    )
