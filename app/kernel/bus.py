"""The command bus: load → authorize → decide → commit, the same for sync, async and processes.

It works on batches: the commands of a batch are grouped by aggregate (each aggregate's in
the order given), the aggregates this process has not cached are loaded in one pipeline
(kernel/aggregate_loader.py), every command is decided (kernel/decisions.py), and the commits
go out in one pipeline of script calls. A commit whose aggregate changed meanwhile writes
nothing; its aggregate is reloaded and what is left of its commands decided again, a bounded
number of times. A single command is a batch of one. How a batch is timed and traced:
kernel/bus_timing.py.

Over 300 lines, one job: one batch of commands through load, decide and commit, in order.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from typing import Literal, TypeVar

import msgspec
from redis.asyncio import Redis

from app.kernel import bus_timing, command_status, keys, tracing
from app.kernel.aggregate_cache import AggregateCache
from app.kernel.aggregate_loader import AggregateLoader
from app.kernel.backoff import Backoff
from app.kernel.bus_timing import Observer, RoundTiming
from app.kernel.coalescer import Coalescer
from app.kernel.commit import CommitRequest, CommitResult, CommitStore
from app.kernel.decisions import BatchAggregate, Round, plan
from app.kernel.envelopes import new_envelope, partition_of_envelope
from app.kernel.errors import problem
from app.kernel.instruments import NO_INSTRUMENTS, Instruments
from app.kernel.messages import Actor, CommandEnvelope, Delivery, Outcome, Problem
from app.kernel.registry import AggregateKind, Registry

log = logging.getLogger(__name__)

S = TypeVar("S", bound=msgspec.Struct)
ATTEMPTS: dict[Delivery, int] = {"inline": 12, "queued": 64}
"""A request waiting for its answer gives up (409 concurrency_conflict) after 12 lost races;
an accepted (queued) command keeps trying far longer: it must not be lost to contention."""
CONTENTION = Backoff(first=0.002, cap=0.2, jitter=True)
"""Between two attempts on aggregates someone else changed meanwhile."""


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
        self._loader = AggregateLoader(redis, registry, partitions, self._cache)
        self._batches: dict[Delivery, Coalescer[CommandEnvelope, Outcome]] = {
            delivery: Coalescer(functools.partial(self._run_batch, delivery=delivery))
            for delivery in ATTEMPTS
        }

    @property
    def instruments(self) -> Instruments:
        return self._instruments

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
        """Wrap a validated command (see kernel/envelopes.py)."""
        return new_envelope(
            self.registry,
            self.partitions,
            command,
            actor,
            base_id=base_id,
            internal=internal,
            partition=partition,
            after=after,
        )

    def partition(self, envelope: CommandEnvelope) -> int:
        return partition_of_envelope(envelope, self.partitions)

    async def load(
        self, kind: AggregateKind[S], aggregate_id: str, *, cached: bool = False
    ) -> S | None:
        """An aggregate's current state, for a process deciding its next step.

        `cached`: what this process last saw will do (for parts of it that never change).
        """
        return await self._loader.load(kind, aggregate_id, cached=cached)

    async def warm(self, kind: AggregateKind[S], aggregate_id: str) -> None:
        """Have an aggregate read ahead of a command on it (see AggregateLoader.warm)."""
        await self._loader.warm(kind, aggregate_id)

    # --- running --------------------------------------------------------------------------

    async def execute(self, envelope: CommandEnvelope, delivery: Delivery = "queued") -> Outcome:
        """Run one command to its commit (a runner: to its end)."""
        spec = self.registry.spec(envelope.type)
        if spec.runner is None:
            (outcome,) = await self.execute_batch([envelope], delivery)
            return outcome
        started = time.perf_counter()
        outcome = await spec.runner(envelope, self)
        bus_timing.observed(self._observer, [envelope], [outcome], started)
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
        aggregates: dict[str, BatchAggregate] = {}
        for index, env in enumerate(envelopes):
            spec = self.registry.spec(env.type)
            assert spec.kind is not None and spec.runner is None, env.type
            partition = self.partition(env)
            key = keys.aggregate(partition, spec.kind.name, env.aggregate_id)
            aggregates.setdefault(
                key, BatchAggregate(spec.kind, partition, key, [])
            ).waiting.append(index)
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
        bus_timing.observed(self._observer, envelopes, ordered, started)
        return ordered

    async def _attempt(
        self,
        envelopes: Sequence[CommandEnvelope],
        pending: list[BatchAggregate],
        delivery: Delivery,
        outcomes: dict[int, Outcome],
        traced: bool = False,
    ) -> list[BatchAggregate]:
        """Load, decide and commit once; the aggregates with commands left to run again."""
        timing = RoundTiming() if traced else None
        lookups = await self._loader.load_round(envelopes, pending, timing)
        round_ = Round()
        started = time.perf_counter()
        for aggregate in pending:
            plan(self.registry, envelopes, aggregate, lookups, delivery, round_, traced)
        committing = time.perf_counter()
        commit_start = tracing.now_ns() if traced else 0
        try:
            results = await self._commits.commit_many([p.request for p in round_.planned])
        except BaseException:  # Redis trouble: what landed is unknown, so nothing is cached
            for aggregate in pending:
                self._cache.drop(aggregate.key)
                aggregate.known = None
            raise
        bus_timing.timed(self._instruments, envelopes, round_, started, committing)
        if timing is not None:
            bus_timing.traced(envelopes, pending, round_, results, timing, commit_start)
        retry = self._settle(envelopes, pending, round_, results, outcomes)
        for aggregate in round_.stale:  # its cached state refused a step as `not_yet`
            self._cache.drop(aggregate.key)
            aggregate.known = None
            if aggregate not in retry:
                retry.append(aggregate)
        for index, error in round_.unrecorded.items():
            outcomes[index] = Outcome(
                command_id=envelopes[index].command_id, status="failed", error=error
            )
            for aggregate in pending:
                if index in aggregate.waiting:
                    aggregate.waiting.remove(index)
        for index in round_.broken:
            outcomes[index] = await self.fail(
                envelopes[index],
                problem("internal_error", 500, "The command could not be processed"),
                delivery,
            )
            for aggregate in pending:
                if index in aggregate.waiting:
                    aggregate.waiting.remove(index)
        return [a for a in retry if a.waiting]

    def _settle(
        self,
        envelopes: Sequence[CommandEnvelope],
        pending: list[BatchAggregate],
        round_: Round,
        results: Sequence[CommitResult | Exception],
        outcomes: dict[int, Outcome],
    ) -> list[BatchAggregate]:
        """Take the round's commit results: the outcomes of what landed, the cache kept only
        for aggregates whose every commit landed as planned; returns the aggregates to
        decide again (one of their commits met a changed aggregate)."""
        retry: dict[str, BatchAggregate] = {}
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
        return list(retry.values())

    # --- commits of no aggregate ------------------------------------------------------------

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


def _outcome(result: CommitResult) -> Outcome:
    assert result.outcome is not None
    return result.outcome
