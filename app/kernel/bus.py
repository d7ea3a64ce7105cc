"""The command bus: load → authorize → decide → commit, the same for sync, async and processes.

It works on batches: the commands of a batch are grouped by aggregate (each aggregate's in
the order given), the aggregates this process has not cached are loaded in one pipeline, every
command is decided, and the commits go out in one pipeline of script calls. A commit whose
aggregate changed meanwhile writes nothing; its aggregate is reloaded and what is left of its
commands decided again. A single command is a batch of one.

Each stage is timed once per batch (the decisions one by one): the timings feed the
`Instruments` (metrics), and a traced command gets its own load, decide and commit spans from
them afterwards, children of its envelope's traceparent — which its events and statuses carry
on (kernel/tracing.py). Nothing is timed for tracing when no command of the batch is traced.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import msgspec
from redis.asyncio import Redis

from app.kernel import command_status, keys, tracing
from app.kernel.aggregate_cache import NOTHING, AggregateCache, Known
from app.kernel.backoff import Backoff
from app.kernel.clock import now
from app.kernel.coalescer import Coalescer
from app.kernel.commit import CommitRequest, CommitResult, CommitStore, EventFields, StatusWrite
from app.kernel.errors import ProblemError, problem
from app.kernel.instruments import NO_INSTRUMENTS, Instruments
from app.kernel.messages import Actor, CommandEnvelope, Delivery, Outcome, Problem, StoredEvent
from app.kernel.partitions import command_id_for, new_id, partition_of, partition_of_command
from app.kernel.registry import AggregateKind, CommandSpec, Context, Decision, Registry

log = logging.getLogger(__name__)

S = TypeVar("S", bound=msgspec.Struct)
Observer = Callable[[str, Outcome, float], None]
ATTEMPTS: dict[Delivery, int] = {"inline": 12, "queued": 64}
"""A request waiting for its answer gives up (409 concurrency_conflict) after 12 lost races;
an accepted (queued) command keeps trying far longer: it must not be lost to contention."""
CONTENTION = Backoff(first=0.002, cap=0.2, jitter=True)
"""Between two attempts on aggregates someone else changed meanwhile."""
PARTITION_TRIES = 256
"""How many fresh ids `envelope` may draw to land an assigned id in a wanted partition."""


def _tag(struct: msgspec.Struct) -> str:
    tag = type(struct).__struct_config__.tag
    assert isinstance(tag, str), f"{type(struct).__name__} needs a string tag"
    return tag


def event_fields(event: StoredEvent, traceparent: str = "") -> EventFields:
    """An event's stream entry: its type, aggregate and version beside the JSON, so a consumer
    can skip (and count) what it does not handle without decoding it; and the trace context
    of the command that made it, if it is traced."""
    fields = [
        "t",
        event.type,
        "a",
        f"{event.aggregate}:{event.aggregate_id}",
        "v",
        str(event.version),
        "e",
        msgspec.json.encode(event).decode(),
    ]
    if traceparent:
        fields += [tracing.FIELD, traceparent]
    return fields


@dataclass
class _Aggregate:
    """One aggregate of a batch: its commands (indexes into the batch) still to run."""

    kind: AggregateKind[Any]
    partition: int
    key: str
    waiting: list[int]
    known: Known | None = None


@dataclass
class _Planned:
    index: int
    aggregate: _Aggregate
    request: CommitRequest
    after: Known | None
    """The aggregate once this commit lands (None: the commit does not touch it)."""


@dataclass
class _Round:
    planned: list[_Planned] = field(default_factory=list)
    broken: list[int] = field(default_factory=list)
    """Commands whose decision raised something other than a refusal (a bug)."""
    decided: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Traced commands only: when each decision started and ended (ns since the epoch)."""


@dataclass
class _Timing:
    """When a traced batch's shared round trips ran (ns since the epoch)."""

    loaded: tuple[int, int] | None = None


class CommandBus:
    def __init__(
        self,
        redis: Redis,
        registry: Registry,
        partitions: int,
        commits: CommitStore,
        observer: Observer | None = None,
        instruments: Instruments = NO_INSTRUMENTS,
    ) -> None:
        self.redis = redis
        self.registry = registry
        self.partitions = partitions
        self._commits = commits
        self._observer = observer
        self._instruments = instruments
        self._cache = AggregateCache()
        self._batches: dict[Delivery, Coalescer[CommandEnvelope, Outcome]] = {
            delivery: Coalescer(functools.partial(self._run_batch, delivery=delivery))
            for delivery in ATTEMPTS
        }
        self._loads: Coalescer[str, str | None] = Coalescer(self._read_states)

    @property
    def instruments(self) -> Instruments:
        return self._instruments

    # --- building envelopes ---------------------------------------------------------------

    def envelope(
        self,
        command: msgspec.Struct,
        actor: Actor,
        *,
        base_id: str | None = None,
        internal: bool = False,
        partition: int | None = None,
        after: str = "",
    ) -> CommandEnvelope:
        """Wrap a validated command; its id ends in the partition of its aggregate.

        `base_id` makes the id deterministic, so a process repeating a step repeats nothing.
        `partition`: where a server-assigned aggregate id should land, if it can choose.
        """
        spec = self.registry.spec(_tag(command))
        if spec.assign_id is not None:
            assert base_id is None, "a server-assigned id names its command"
            aggregate_id = self._assigned(spec, partition)
            base_id = aggregate_id
        elif spec.kind is None:
            aggregate_id = base_id or new_id()
        else:
            aggregate_id = spec.aggregate_id(command)
        aggregate_partition = partition_of(aggregate_id, self.partitions)
        return CommandEnvelope(
            command_id=command_id_for(aggregate_partition, base_id),
            type=spec.name,
            body=msgspec.Raw(msgspec.json.encode(command)),
            aggregate_id=aggregate_id,
            sender=actor.username,
            roles=tuple(sorted(actor.roles)),
            accepted_at=now(),
            internal=internal,
            after=after,
            traceparent=tracing.current(),
        )

    def _assigned(self, spec: CommandSpec[Any, Any], partition: int | None) -> str:
        assert spec.assign_id is not None
        aggregate_id = spec.assign_id()
        for _ in range(PARTITION_TRIES if partition is not None else 0):
            if partition_of(aggregate_id, self.partitions) == partition:
                break
            aggregate_id = spec.assign_id()
        return aggregate_id

    def partition(self, envelope: CommandEnvelope) -> int:
        partition = partition_of_command(envelope.command_id, self.partitions)
        if partition is None:
            raise ValueError(f"command id {envelope.command_id!r} names no partition")
        return partition

    async def load(
        self, kind: AggregateKind[S], aggregate_id: str, *, cached: bool = False
    ) -> S | None:
        """An aggregate's current state, for a process deciding its next step.

        `cached`: what this process last saw will do (for parts of it that never change).
        """
        key = keys.aggregate(partition_of(aggregate_id, self.partitions), kind.name, aggregate_id)
        known = self._cache.get(key) if cached else None
        if known is not None and isinstance(known.state, kind.state_type):
            return known.state
        (raw,) = await self._loads.submit([key])  # loads made together share a round trip
        return kind.decoder.decode(raw) if raw else None

    async def _read_states(self, state_keys: list[str]) -> list[str | None]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in state_keys:
                pipe.hget(key, "s")
            return list(await pipe.execute())

    # --- running --------------------------------------------------------------------------

    async def execute(self, envelope: CommandEnvelope, delivery: Delivery = "queued") -> Outcome:
        """Run one command to its commit (a runner: to its end)."""
        spec = self.registry.spec(envelope.type)
        if spec.runner is None:
            (outcome,) = await self.execute_batch([envelope], delivery)
            return outcome
        started = time.perf_counter()
        outcome = await spec.runner(envelope, self)
        self._observe([envelope], [outcome], started)
        return outcome

    async def execute_batch(
        self, envelopes: Sequence[CommandEnvelope], delivery: Delivery
    ) -> list[Outcome]:
        """Run commands of any aggregates to their commits: each aggregate's in the given
        order, all of them in two round trips when nothing else writes the same aggregates.

        Batches asked for at the same moment (by concurrent tasks) go out as one, and those
        asked for while it is out go together next (see kernel/coalescer.py).
        """
        return await self._batches[delivery].submit(envelopes)

    async def _run_batch(
        self, envelopes: Sequence[CommandEnvelope], delivery: Delivery
    ) -> list[Outcome]:
        started = time.perf_counter()
        outcomes: dict[int, Outcome] = {}
        aggregates: dict[str, _Aggregate] = {}
        for index, env in enumerate(envelopes):
            spec = self.registry.spec(env.type)
            assert spec.kind is not None and spec.runner is None, env.type
            partition = self.partition(env)
            key = keys.aggregate(partition, spec.kind.name, env.aggregate_id)
            aggregates.setdefault(key, _Aggregate(spec.kind, partition, key, [])).waiting.append(
                index
            )
        traced = tracing.enabled() and any(env.traceparent for env in envelopes)
        async with self._cache.locks(aggregates):
            pending = list(aggregates.values())
            for attempt in range(ATTEMPTS[delivery]):
                if attempt:
                    await CONTENTION.sleep(attempt - 1)
                pending = await self._attempt(envelopes, pending, delivery, outcomes, traced)
                if not pending:
                    break
            for aggregate in pending:
                for index in aggregate.waiting:
                    outcomes[index] = await self.fail(
                        envelopes[index],
                        problem(
                            "concurrency_conflict",
                            409,
                            "The aggregate kept changing; nothing was done",
                        ),
                        delivery,
                    )
        ordered = [outcomes[index] for index in range(len(envelopes))]
        self._observe(envelopes, ordered, started)
        return ordered

    async def _attempt(
        self,
        envelopes: Sequence[CommandEnvelope],
        pending: list[_Aggregate],
        delivery: Delivery,
        outcomes: dict[int, Outcome],
        traced: bool = False,
    ) -> list[_Aggregate]:
        """Load, decide and commit once; the aggregates with commands left to run again."""
        timing = _Timing() if traced else None
        lookups = await self._load(envelopes, pending, timing)
        round_ = _Round()
        started = time.perf_counter()
        for aggregate in pending:
            self._plan(envelopes, aggregate, lookups, delivery, round_, traced)
        committing = time.perf_counter()
        commit_start = tracing.now_ns() if traced else 0
        results = await self._commits.commit_many([p.request for p in round_.planned])
        self._timed(envelopes, round_, started, committing)
        if timing is not None:
            self._trace(envelopes, pending, round_, results, timing, commit_start)
        retry: dict[str, _Aggregate] = {}
        intact: dict[str, bool] = {}
        for planned, result in zip(round_.planned, results, strict=True):
            aggregate = planned.aggregate
            env = envelopes[planned.index]
            if isinstance(result, Exception):
                log.error("commit of %s %s failed: %r", env.type, env.command_id, result)
                round_.broken.append(planned.index)
                intact[aggregate.key] = False
                continue
            if result.outcome is None:  # the aggregate changed under us: decide again
                retry.setdefault(aggregate.key, aggregate)
                intact[aggregate.key] = False
                continue
            outcomes[planned.index] = result.outcome
            aggregate.waiting.remove(planned.index)
            if result.duplicate:
                intact[aggregate.key] = False
            elif planned.after is not None and intact.get(aggregate.key, True):
                aggregate.known = planned.after
        for aggregate in pending:
            if intact.get(aggregate.key, True) and aggregate.known is not None:
                self._cache.put(aggregate.key, aggregate.known)
            else:
                self._cache.drop(aggregate.key)
                aggregate.known = None
        for index in round_.broken:
            outcomes[index] = await self.fail(
                envelopes[index],
                problem("internal_error", 500, "The command could not be processed"),
                delivery,
            )
            for aggregate in pending:
                if index in aggregate.waiting:
                    aggregate.waiting.remove(index)
        return [a for a in retry.values() if a.waiting]

    async def _load(
        self,
        envelopes: Sequence[CommandEnvelope],
        pending: list[_Aggregate],
        timing: _Timing | None = None,
    ) -> dict[str, Any]:
        """States of the aggregates not known yet, and the other aggregates commands look up,
        in one pipeline. Returns the looked-up states by aggregate id."""
        for aggregate in pending:
            if aggregate.known is None:
                aggregate.known = self._cache.get(aggregate.key)
        unknown = [a for a in pending if a.known is None]
        wanted: dict[str, tuple[AggregateKind[Any], str]] = {}
        for aggregate in pending:
            for index in aggregate.waiting:
                spec = self.registry.spec(envelopes[index].type)
                if spec.lookups is None:
                    continue
                command = self.registry.decode_body(envelopes[index].type, envelopes[index].body)
                for kind, other_id in spec.lookups(command):
                    other_partition = partition_of(other_id, self.partitions)
                    wanted[keys.aggregate(other_partition, kind.name, other_id)] = (kind, other_id)
        if not unknown and not wanted:
            return {}
        load_start = tracing.now_ns() if timing is not None else 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for aggregate in unknown:
                pipe.hmget(aggregate.key, "v", "w", "s")
            for other in wanted:
                pipe.hget(other, "s")
            replies = list(await pipe.execute())
        if timing is not None:
            timing.loaded = (load_start, tracing.now_ns())
        states, found = replies[: len(unknown)], replies[len(unknown) :]
        for aggregate, (version, writer, state) in zip(unknown, states, strict=True):
            decoded = aggregate.kind.decoder.decode(state) if state else None
            aggregate.known = Known(int(version or 0), writer or "", decoded)
        return {
            other_id: kind.decoder.decode(raw) if raw else None
            for (kind, other_id), raw in zip(wanted.values(), found, strict=True)
        }

    def _plan(
        self,
        envelopes: Sequence[CommandEnvelope],
        aggregate: _Aggregate,
        lookups: dict[str, Any],
        delivery: Delivery,
        round_: _Round,
        traced: bool = False,
    ) -> None:
        """Decide the aggregate's waiting commands in order, each on the state the one
        before it leaves, and plan their commits (expected version and writer chained)."""
        known = aggregate.known or NOTHING
        for index in aggregate.waiting:
            env = envelopes[index]
            spec = self.registry.spec(env.type)
            if traced and env.traceparent:
                round_.decided[index] = (tracing.now_ns(), 0)
            try:
                command = self.registry.decode_body(env.type, env.body)
                context = Context(
                    command_id=env.command_id,
                    actor=env.actor,
                    now=now(),
                    aggregate_id=env.aggregate_id,
                    lookups=lookups,
                )
                if spec.authorize is not None:
                    spec.authorize(command, known.state, env.actor)
                assert spec.decide is not None
                decision = spec.decide(command, known.state, context)
            except ProblemError as exc:
                # a refusal is a decision too: it holds only if the state it saw is current
                request = self._refusal(env, aggregate, known, exc.to_problem(), delivery)
                round_.planned.append(_Planned(index, aggregate, request, known))
                continue
            except Exception:
                log.exception("deciding %s %s failed", env.type, env.command_id)
                round_.broken.append(index)
                continue
            finally:
                if index in round_.decided:
                    round_.decided[index] = (round_.decided[index][0], tracing.now_ns())
            request, after = self._success(env, spec, aggregate, known, decision, delivery)
            round_.planned.append(_Planned(index, aggregate, request, after))
            known = after

    def _success(
        self,
        env: CommandEnvelope,
        spec: CommandSpec[Any, Any],
        aggregate: _Aggregate,
        known: Known,
        decision: Decision[Any],
        delivery: Delivery,
    ) -> tuple[CommitRequest, Known]:
        at = now()
        stored = [
            StoredEvent(
                type=_tag(event),
                aggregate=aggregate.kind.name,
                aggregate_id=env.aggregate_id,
                version=known.version + offset + 1,
                command_id=env.command_id,
                at=at,
                data=msgspec.Raw(msgspec.json.encode(event)),
            )
            for offset, event in enumerate(decision.events)
        ]
        if decision.state is not None and not stored:
            raise ValueError(f"{env.type}: a state change needs an event to explain it")
        outcome, statuses = command_status.decided(
            env, delivery, complete=decision.complete, step=decision.step, at=at
        )
        statuses += self._followed(aggregate, env, decision, at)
        after = known
        if stored:
            state = decision.state if decision.state is not None else known.state
            after = Known(known.version + len(stored), env.command_id, state)
        request = CommitRequest(
            partition=aggregate.partition,
            command_id=env.command_id,
            outcome_status=outcome,
            aggregate_key=aggregate.key,
            expected_version=known.version,
            expected_writer=known.writer,
            state_json=msgspec.json.encode(decision.state) if decision.state is not None else b"",
            events=[event_fields(e, env.traceparent) for e in stored],
            integration=[msgspec.json.encode(e) for e in decision.integration],
            statuses=statuses,
            after=env.after,
            traceparent=env.traceparent,
        )
        return request, after

    def _followed(
        self, aggregate: _Aggregate, env: CommandEnvelope, decision: Decision[Any], at: float
    ) -> list[StatusWrite]:
        """Status changes of the command this aggregate's events are steps of (if any)."""
        follower = self.registry.follower(aggregate.kind.name)
        if follower is None or follower.follow is None or env.type == follower.name:
            return []
        origin = command_id_for(aggregate.partition, env.aggregate_id)
        return command_status.followed(origin, follower.follow, decision.events, at)

    def _refusal(
        self,
        env: CommandEnvelope,
        aggregate: _Aggregate,
        known: Known,
        error: Problem,
        delivery: Delivery,
    ) -> CommitRequest:
        outcome, statuses = command_status.refused(env, error, delivery)
        return CommitRequest(
            partition=aggregate.partition,
            command_id=env.command_id,
            outcome_status=outcome,
            aggregate_key=aggregate.key,
            expected_version=known.version,
            expected_writer=known.writer,
            statuses=statuses,
            error=error,
            traceparent=env.traceparent,
        )

    async def fail(
        self, env: CommandEnvelope, error: Problem, delivery: Delivery = "queued"
    ) -> Outcome:
        """Record a failed command: its status and dedup record, no state, no event."""
        outcome, statuses = command_status.refused(env, error, delivery)
        result = await self._commits.commit(
            CommitRequest(
                partition=self.partition(env),
                command_id=env.command_id,
                outcome_status=outcome,
                statuses=statuses,
                error=error,
                traceparent=env.traceparent,
            )
        )
        return _outcome(result)

    async def finish(
        self,
        env: CommandEnvelope,
        status: Literal["succeeded", "failed"],
        error: Problem | None = None,
        position: str = "",
    ) -> Outcome:
        """Close a command that is not one aggregate's transaction (a runner's last word).

        `position`: what its effects, committed elsewhere, have reached.
        """
        outcome, statuses = command_status.closed(env, status, error)
        result = await self._commits.commit(
            CommitRequest(
                partition=self.partition(env),
                command_id=env.command_id,
                outcome_status=outcome,
                statuses=statuses,
                error=error,
                after=position,
                traceparent=env.traceparent,
            )
        )
        return _outcome(result)

    def _timed(
        self,
        envelopes: Sequence[CommandEnvelope],
        round_: _Round,
        started: float,
        committing: float,
    ) -> None:
        """Each planned command spent the round's decisions and its commit round trip."""
        if not round_.planned:
            return
        decide, commit = committing - started, time.perf_counter() - committing
        stage = self._instruments.stage
        for planned in round_.planned:
            command_type = envelopes[planned.index].type
            stage(command_type, "decide", decide)
            stage(command_type, "commit", commit)

    def _trace(
        self,
        envelopes: Sequence[CommandEnvelope],
        pending: list[_Aggregate],
        round_: _Round,
        results: Sequence[CommitResult | Exception],
        timing: _Timing,
        commit_start: int,
    ) -> None:
        """Spans of each traced command of the round, from the round's timings."""
        commit_end = tracing.now_ns()
        if timing.loaded is not None:
            for aggregate in pending:
                for index in aggregate.waiting:
                    env = envelopes[index]
                    tracing.record(
                        "load",
                        env.traceparent,
                        *timing.loaded,
                        kind=tracing.CLIENT,
                        attributes={"db.system.name": "redis", "db.operation.name": "pipeline"},
                    )
        for index, (start, end) in round_.decided.items():
            env = envelopes[index]
            tracing.record(
                f"decide {env.type}",
                env.traceparent,
                start,
                end,
                attributes={tracing.COMMAND_TYPE: env.type},
                error="" if index not in round_.broken else "the decision raised",
            )
        for planned, result in zip(round_.planned, results, strict=True):
            env = envelopes[planned.index]
            if not env.traceparent:
                continue
            answer = _answer(result)
            tracing.record(
                f"commit {env.type}",
                env.traceparent,
                commit_start,
                commit_end,
                kind=tracing.CLIENT,
                attributes={
                    tracing.COMMAND_TYPE: env.type,
                    "db.system.name": "redis",
                    "db.operation.name": "EVALSHA",
                    "cqrs.commit.result": answer,
                    "cqrs.commit.events": len(planned.request.events),
                },
                error=answer if answer == "error" else "",
            )

    def _observe(
        self, envelopes: Sequence[CommandEnvelope], outcomes: Sequence[Outcome], started: float
    ) -> None:
        if self._observer is None:
            return
        took = time.perf_counter() - started
        for env, outcome in zip(envelopes, outcomes, strict=True):
            if not env.internal:
                self._observer(env.type, outcome, took)


def _answer(result: CommitResult | Exception) -> str:
    if isinstance(result, Exception):
        return "error"
    if result.outcome is None:
        return "conflict"
    return "duplicate" if result.duplicate else result.outcome.status


def _outcome(result: CommitResult) -> Outcome:
    assert result.outcome is not None
    return result.outcome
