"""The one atomic write of a command: state + events + statuses + dedup record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.messages import Outcome, Problem
from app.kernel.scripts import load_script

NOTICES_MAXLEN = 5000
JOURNAL_MAXLEN = 200_000

_problem_decoder = msgspec.json.Decoder(Problem)


class StatusWrite(msgspec.Struct, frozen=True):
    """One status hash change inside a commit (see commit.lua, ARGV[9])."""

    id: str
    fields: dict[str, str]
    steps: list[str]
    final: bool = False


@dataclass(frozen=True)
class CommitResult:
    outcome: Outcome | None
    """None when the expected version did not match: reload and decide again."""
    duplicate: bool = False


class CommitStore:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self._script = load_script(redis, __file__, "commit.lua")
        self._ttl = ttl_seconds

    async def commit(
        self,
        *,
        partition: int,
        command_id: str,
        aggregate_key: str | None,
        expected_version: int,
        state_json: bytes,
        events: Sequence[bytes],
        integration: Sequence[bytes] = (),
        statuses: Sequence[tuple[int, StatusWrite]] = (),
        outcome_status: str,
        error: Problem | None = None,
    ) -> CommitResult:
        status_keys: list[str] = []
        for status_partition, write in statuses:
            if status_partition != partition:
                raise ValueError(f"status of {write.id} is not in partition {partition}")
            status_keys += [
                keys.command_status(partition, write.id),
                keys.command_steps(partition, write.id),
            ]
        error_json = msgspec.json.encode(error).decode() if error is not None else ""
        reply = await self._script(
            keys=[
                keys.dedup(partition, command_id),
                keys.events(partition),
                keys.journal(partition),
                keys.integration(partition),
                keys.status_notices(partition),
                aggregate_key or keys.dedup(partition, command_id),
                *status_keys,
            ],
            args=[
                partition,
                expected_version if aggregate_key is not None else -1,
                state_json.decode(),
                outcome_status,
                error_json,
                self._ttl,
                _json_array(events),
                _json_array(integration),
                msgspec.json.encode([write for _, write in statuses]).decode(),
                NOTICES_MAXLEN,
                JOURNAL_MAXLEN,
            ],
        )
        kind = reply[0]
        if kind == "ok":
            return CommitResult(
                Outcome(
                    command_id=command_id,
                    status=outcome_status,
                    position=reply[1] or None,
                    error=error,
                )
            )
        if kind == "dup":
            return CommitResult(outcome_from_record(command_id, reply[1:]), duplicate=True)
        return CommitResult(None)


def outcome_from_record(command_id: str, record: Sequence[str | None]) -> Outcome:
    status, position, error = [*record, None, None, None][:3]
    return Outcome(
        command_id=command_id,
        status=status or "failed",
        position=position or None,
        error=_problem_decoder.decode(error) if error else None,
    )


def _json_array(items: Sequence[bytes]) -> str:
    return msgspec.json.encode([item.decode() for item in items]).decode()
