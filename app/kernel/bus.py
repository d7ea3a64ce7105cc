"""The command bus: load → authorize → decide → commit, the same for sync, async and processes."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.aggregate_cache import AggregateCache
from app.kernel.clock import now
from app.kernel.command_status import step_json
from app.kernel.commit import CommitResult, CommitStore, StatusWrite, outcome_from_record
from app.kernel.errors import ProblemError, problem
from app.kernel.messages import Actor, CommandEnvelope, Outcome, Problem, StoredEvent
from app.kernel.partitions import command_id_for, new_id, partition_of, partition_of_command
from app.kernel.registry import (
    AggregateKind,
    CommandProgress,
    CommandSpec,
    Context,
    Decision,
    Registry,
)

S = TypeVar("S", bound=msgspec.Struct)
Observer = Callable[[str, Outcome, float], None]
ATTEMPTS_INLINE = 12
"""A request waiting for its answer gives up (409 concurrency_conflict) after this many."""
ATTEMPTS_QUEUED = 64
"""An accepted (queued) command keeps trying far longer: it must not be lost to contention."""


def _tag(struct: msgspec.Struct) -> str:
    tag = type(struct).__struct_config__.tag
    assert isinstance(tag, str), f"{type(struct).__name__} needs a string tag"
    return tag


class CommandBus:
    def __init__(
        self,
        redis: Redis,
        registry: Registry,
        partitions: int,
        commits: CommitStore,
        observer: Observer | None = None,
    ) -> None:
        self.redis = redis
        self.registry = registry
        self.partitions = partitions
        self._commits = commits
        self._observer = observer
        self._cache = AggregateCache()

    # --- building envelopes ---------------------------------------------------------------

    def envelope(
        self,
        command: msgspec.Struct,
        actor: Actor,
        *,
        base_id: str | None = None,
        internal: bool = False,
    ) -> CommandEnvelope:
        """Wrap a validated command; its id ends in the partition of its aggregate.

        `base_id` makes the id deterministic, so a process repeating a step repeats nothing.
        """
        spec = self.registry.spec(_tag(command))
        if spec.assign_id is not None:
            aggregate_id = spec.assign_id()
        elif spec.kind is None:
            aggregate_id = base_id or new_id()
        else:
            aggregate_id = spec.aggregate_id(command)
        partition = partition_of(aggregate_id, self.partitions)
        return CommandEnvelope(
            command_id=command_id_for(partition, base_id),
            type=spec.name,
            body=msgspec.Raw(msgspec.json.encode(command)),
            aggregate_id=aggregate_id,
            sender=actor.username,
            roles=tuple(sorted(actor.roles)),
            accepted_at=now(),
            internal=internal,
        )

    def partition(self, envelope: CommandEnvelope) -> int:
        partition = partition_of_command(envelope.command_id, self.partitions)
        if partition is None:
            raise ValueError(f"command id {envelope.command_id!r} names no partition")
        return partition

    async def load(self, kind: AggregateKind[S], aggregate_id: str) -> S | None:
        """An aggregate's current state, for a process deciding its next step."""
        partition = partition_of(aggregate_id, self.partitions)
        raw = await self.redis.hget(keys.aggregate(partition, kind.name, aggregate_id), "s")
        return kind.decoder.decode(raw) if raw else None

    # --- running --------------------------------------------------------------------------

    async def execute(self, envelope: CommandEnvelope, *, fresh: bool = False) -> Outcome:
        """Run a command to its commit. `fresh`: accepted just now, inline (a sync request)."""
        started = time.perf_counter()
        spec = self.registry.spec(envelope.type)
        if spec.runner is not None:
            outcome = await spec.runner(envelope, self)
        else:
            outcome = await self._run(spec, envelope, fresh)
        if self._observer is not None and not envelope.internal:
            self._observer(envelope.type, outcome, time.perf_counter() - started)
        return outcome

    async def _run(self, spec: CommandSpec[Any, Any], env: CommandEnvelope, fresh: bool) -> Outcome:
        kind = spec.kind
        assert kind is not None
        partition = self.partition(env)
        state_key = keys.aggregate(partition, kind.name, env.aggregate_id)
        async with self._cache.lock(state_key):
            return await self._decide_and_commit(spec, env, partition, state_key, fresh)

    async def _decide_and_commit(
        self,
        spec: CommandSpec[Any, Any],
        env: CommandEnvelope,
        partition: int,
        state_key: str,
        fresh: bool,
    ) -> Outcome:
        kind = spec.kind
        assert kind is not None and spec.decide is not None
        command = self.registry.decode_body(env.type, env.body)
        lookups = list(spec.lookups(command)) if spec.lookups is not None else []
        actor = env.actor
        for attempt in range(ATTEMPTS_INLINE if fresh else ATTEMPTS_QUEUED):
            cached = self._cache.get(state_key) if attempt == 0 else None
            others: list[str | None] = []
            if cached is None or not fresh or lookups:
                async with self.redis.pipeline(transaction=False) as pipe:
                    if not fresh:  # a redelivery may find its own outcome already recorded
                        pipe.hmget(
                            keys.dedup(partition, env.command_id), "status", "position", "error"
                        )
                    if cached is None:
                        pipe.hmget(state_key, "v", "s")
                    for other_kind, other_id in lookups:
                        other_partition = partition_of(other_id, self.partitions)
                        pipe.hget(keys.aggregate(other_partition, other_kind.name, other_id), "s")
                    replies = list(await pipe.execute())
                if not fresh:
                    dedup = replies.pop(0)
                    if dedup[0] is not None:
                        return outcome_from_record(env.command_id, dedup)
                if cached is None:
                    version_raw, state_raw = replies.pop(0)
                    cached = (
                        int(version_raw or 0),
                        kind.decoder.decode(state_raw) if state_raw else None,
                    )
                others = replies
            version, state = cached
            context = Context(
                command_id=env.command_id,
                actor=actor,
                now=now(),
                aggregate_id=env.aggregate_id,
                lookups={
                    other_id: other_kind.decoder.decode(raw) if raw else None
                    for (other_kind, other_id), raw in zip(lookups, others, strict=True)
                },
            )
            try:
                if spec.authorize is not None:
                    spec.authorize(command, state, actor)
                decision = spec.decide(command, state, context)
            except ProblemError as exc:
                # a refusal is a decision too: it holds only if the state it saw is current
                refused = await self._commit_failure(
                    env, exc.to_problem(), fresh, state_key, version
                )
                if refused.outcome is not None:
                    self._cache.put(state_key, version, state)
                    return refused.outcome
                self._cache.drop(state_key)
                continue
            result = await self._commit(env, partition, state_key, version, decision, fresh)
            if result.outcome is not None:
                if result.duplicate:
                    self._cache.drop(state_key)
                else:
                    new_state = decision.state if decision.state is not None else state
                    self._cache.put(state_key, version + len(decision.events), new_state)
                return result.outcome
            self._cache.drop(state_key)
            await asyncio.sleep(random.uniform(0, min(0.2, 0.001 * 2 ** min(attempt, 8))))
        return await self.fail(
            env,
            problem("concurrency_conflict", 409, "The aggregate kept changing; nothing was done"),
            fresh=fresh,
        )

    async def _commit(
        self,
        env: CommandEnvelope,
        partition: int,
        state_key: str,
        version: int,
        decision: Decision[Any],
        fresh: bool,
    ) -> CommitResult:
        at = now()
        kind = self.registry.spec(env.type).kind
        assert kind is not None
        events = [
            msgspec.json.encode(
                StoredEvent(
                    type=_tag(event),
                    aggregate=kind.name,
                    aggregate_id=env.aggregate_id,
                    version=version + index + 1,
                    command_id=env.command_id,
                    at=at,
                    data=msgspec.Raw(msgspec.json.encode(event)),
                )
            )
            for index, event in enumerate(decision.events)
        ]
        if decision.state is not None and not events:
            raise ValueError(f"{env.type}: a state change needs an event to explain it")
        statuses: list[tuple[int, StatusWrite]] = []
        if not env.internal:
            if decision.complete:
                own = self._final_write(env, "succeeded", None, at, fresh)
            else:
                own = self._write(
                    env, {"status": "processing", "position": "$position"}, decision.step, fresh
                )
            statuses.append((partition, own))
        statuses += [self._progress_write(p, at) for p in decision.progress]
        result = await self._commits.commit(
            partition=partition,
            command_id=env.command_id,
            aggregate_key=state_key,
            expected_version=version,
            state_json=msgspec.json.encode(decision.state) if decision.state is not None else b"",
            events=events,
            integration=[msgspec.json.encode(e) for e in decision.integration],
            statuses=statuses,
            outcome_status="succeeded" if decision.complete else "processing",
        )
        return result

    async def fail(self, env: CommandEnvelope, error: Problem, *, fresh: bool = False) -> Outcome:
        """Record a failed command: its status and dedup record, no state, no event."""
        result = await self._commit_failure(env, error, fresh)
        assert result.outcome is not None
        return result.outcome

    async def _commit_failure(
        self,
        env: CommandEnvelope,
        error: Problem,
        fresh: bool,
        state_key: str | None = None,
        version: int = -1,
    ) -> CommitResult:
        """With `state_key`, only if the aggregate is still at `version` (else outcome None)."""
        partition = self.partition(env)
        statuses = []
        if not env.internal:
            statuses.append((partition, self._final_write(env, "failed", error, now(), fresh)))
        return await self._commits.commit(
            partition=partition,
            command_id=env.command_id,
            aggregate_key=state_key,
            expected_version=version,
            state_json=b"",
            events=(),
            statuses=statuses,
            outcome_status="failed",
            error=error,
        )

    async def finish(
        self, env: CommandEnvelope, status: str, error: Problem | None = None
    ) -> Outcome:
        """Close a command that is not one aggregate's transaction (a runner's last word)."""
        partition = self.partition(env)
        result = await self._commits.commit(
            partition=partition,
            command_id=env.command_id,
            aggregate_key=None,
            expected_version=-1,
            state_json=b"",
            events=(),
            statuses=[(partition, self._final_write(env, status, error, now(), False))],
            outcome_status=status,
            error=error,
        )
        assert result.outcome is not None
        return result.outcome

    # --- status writes ----------------------------------------------------------------------

    def _write(
        self,
        env: CommandEnvelope,
        fields: dict[str, str],
        step: str,
        fresh: bool,
        final: bool = False,
    ) -> StatusWrite:
        steps = [step_json("accepted", env.accepted_at)] if fresh else []
        if step:
            steps.append(step_json(step))
        all_fields = {
            "type": env.type,
            "sender": env.sender or "",
            "accepted_at": str(env.accepted_at),
            **fields,
        }
        return StatusWrite(id=env.command_id, fields=all_fields, steps=steps, final=final)

    def _final_write(
        self, env: CommandEnvelope, status: str, error: Problem | None, at: float, fresh: bool
    ) -> StatusWrite:
        fields = {"status": status, "completed_at": str(at), "position": "$position"}
        if error is not None:
            fields["error"] = msgspec.json.encode(error).decode()
            fields["error_code"] = error.code
        return self._write(env, fields, status, fresh, final=True)

    def _progress_write(self, progress: CommandProgress, at: float) -> tuple[int, StatusWrite]:
        partition = partition_of_command(progress.command_id, self.partitions)
        assert partition is not None, progress.command_id
        fields: dict[str, str] = {"position": "$position"}
        steps = [step_json(progress.step, at)] if progress.step else []
        if progress.status is not None:
            fields.update(status=progress.status, completed_at=str(at))
            if progress.error is not None:
                fields["error"] = msgspec.json.encode(progress.error).decode()
                fields["error_code"] = progress.error.code
            steps.append(step_json(progress.status, at))
        return partition, StatusWrite(
            id=progress.command_id, fields=fields, steps=steps, final=progress.status is not None
        )
