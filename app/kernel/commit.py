"""The one atomic write of a command: state + events + statuses + dedup record.

Many commits go out in one pipeline (`commit_many`); each is still its own script call,
atomic on its own, and answers for itself (ok, duplicate, or a version conflict).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec
from redis.asyncio import Redis

from app.kernel import keys, tracing
from app.kernel.handlers import INFRA_ERRORS
from app.kernel.messages import FINAL_STATUSES, OUTCOME_STATUSES, Outcome, Problem
from app.kernel.notices import STATUS_NOTICE_FIELDS
from app.kernel.replication import NO_WAIT, Replication
from app.kernel.scripts import Args, load_script, run_calls

NOTICES_MAXLEN = 5000
JOURNAL_MAXLEN = 200_000

_problem_decoder = msgspec.json.Decoder(Problem)
_SCRIPT = load_script(
    __file__,
    "commit.lua",
    FINAL_STATUSES=FINAL_STATUSES,
    OUTCOME_STATUSES=OUTCOME_STATUSES,
    STATUS_NOTICE=STATUS_NOTICE_FIELDS,
    TRACE_FIELD=tracing.FIELD,
)


class StatusWrite(msgspec.Struct, frozen=True):
    """One status hash change inside a commit (see commit.lua, ARGV[9])."""

    id: str
    fields: dict[str, str]
    steps: list[str]
    final: bool = False
    track: int = 0
    """A long-running command's change: ms since the epoch, its score among the partition's
    running commands (kernel/running.py); 0 for any other command."""


EventFields = list[str]
"""An event as the XADD field/value list of its stream entry."""


@dataclass(frozen=True)
class CommitRequest:
    partition: int
    command_id: str
    outcome_status: str
    aggregate_key: str | None = None
    expected_version: int = -1
    expected_writer: str = ""
    state_json: bytes = b""
    events: Sequence[EventFields] = ()
    integration: Sequence[bytes] = ()
    statuses: Sequence[StatusWrite] = field(default_factory=list)
    error: Problem | None = None
    after: str = ""
    """A position the outcome must also cover (effects committed elsewhere, before)."""
    traceparent: str = ""
    """Written beside the integration events and status notices (events carry their own)."""
    track: int = 0
    """ms since the epoch: the command joins its partition's running commands when it lands,
    for a process's sweeper to settle (kernel/running.py); 0: it does not."""


@dataclass(frozen=True)
class CommitResult:
    outcome: Outcome | None
    """None when the expected version did not match: reload and decide again."""
    duplicate: bool = False


class CommitError(RuntimeError):
    """The script refused its input: a bug in the caller, never a business outcome."""


class CommitStore:
    def __init__(self, redis: Redis, ttl_seconds: int, replication: Replication = NO_WAIT) -> None:
        """`replication`: the replicas each round of commits waits for before it answers."""
        self._redis = redis
        self._ttl = ttl_seconds
        self._replication = replication

    async def commit(self, request: CommitRequest) -> CommitResult:
        (result,) = await self.commit_many([request])
        if isinstance(result, Exception):
            raise result
        return result

    async def commit_many(
        self, requests: Sequence[CommitRequest]
    ) -> list[CommitResult | Exception]:
        """Every request in one round trip; a failed call answers with its exception.

        Redis trouble on any call (a node failing over, say) raises it: what did land is
        repeated by whoever retries, and its dedup record answers. So does a round whose
        replicas did not confirm it (ReplicationTimeout): nothing in it may be acknowledged.
        """
        calls = [self._call(r) for r in requests]
        replies = await run_calls(self._redis, _SCRIPT, calls, self._replication)
        for reply in replies:
            if isinstance(reply, INFRA_ERRORS):
                raise reply
        return [_result(r, reply) for r, reply in zip(requests, replies, strict=True)]

    def _call(self, request: CommitRequest) -> tuple[list[str], Args]:
        partition = request.partition
        status_keys: list[str] = []
        for write in request.statuses:
            status_keys += [
                keys.command_status(partition, write.id),
                keys.command_steps(partition, write.id),
            ]
        error_json = msgspec.json.encode(request.error).decode() if request.error else ""
        dedup = keys.dedup(partition, request.command_id)
        return (
            [
                dedup,
                keys.events(partition),
                keys.journal(partition),
                keys.integration(partition),
                keys.status_notices(partition),
                request.aggregate_key or dedup,
                keys.queue_counters(partition),
                keys.running(partition),
                *status_keys,
            ],
            [
                partition,
                request.expected_version if request.aggregate_key is not None else -1,
                request.state_json.decode(),
                request.outcome_status,
                error_json,
                self._ttl,
                msgspec.json.encode(request.events).decode(),
                _json_array(request.integration),
                msgspec.json.encode(request.statuses).decode(),
                NOTICES_MAXLEN,
                JOURNAL_MAXLEN,
                request.after,
                request.expected_writer,
                request.command_id,
                request.traceparent,
                request.track,
            ],
        )


def _result(request: CommitRequest, reply: object) -> CommitResult | Exception:
    if isinstance(reply, Exception):
        return reply
    assert isinstance(reply, list)
    kind = reply[0]
    if kind == "ok":
        return CommitResult(
            Outcome(
                command_id=request.command_id,
                status=request.outcome_status,
                position=reply[1] or None,
                error=request.error,
            )
        )
    if kind == "dup":
        return CommitResult(outcome_from_record(request.command_id, reply[1:]), duplicate=True)
    if kind == "conflict":
        return CommitResult(None)
    return CommitError(f"unexpected commit reply {reply!r}")


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
