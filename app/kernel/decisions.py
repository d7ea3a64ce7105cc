"""Deciding a batch's commands, and the commit each decision needs.

An aggregate's waiting commands are decided in order, each on the state the one before it
leaves; each decision becomes a commit request whose expected version and writer chain on
from the one before it. A refusal is a decision too: its commit holds only if the state it
saw is still current. The statuses each commit writes are chosen in kernel/command_status.py.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from app.kernel import command_status, tracing
from app.kernel.aggregate_cache import NOTHING, Known
from app.kernel.clock import now
from app.kernel.commit import CommitRequest, EventFields, StatusWrite
from app.kernel.envelopes import tag_of
from app.kernel.errors import CommandRejected, ProblemError
from app.kernel.messages import CommandEnvelope, Delivery, Problem, StoredEvent
from app.kernel.partitions import command_id_for
from app.kernel.registry import AggregateKind, CommandSpec, Context, Decision, Registry

log = logging.getLogger(__name__)


@dataclass
class BatchAggregate:
    """One aggregate of a batch: its commands (indexes into the batch) still to run."""

    kind: AggregateKind[Any]
    partition: int
    key: str
    waiting: list[int]
    known: Known | None = None
    loaded: bool = False
    """`known` was read from Redis in this round (not this process's cache)."""


@dataclass
class Planned:
    index: int
    aggregate: BatchAggregate
    request: CommitRequest
    after: Known | None
    """The aggregate once this commit lands (None: the commit does not touch it)."""


@dataclass
class Round:
    """One attempt at a batch: the commits it plans, and what could not be planned."""

    planned: list[Planned] = field(default_factory=list)
    broken: list[int] = field(default_factory=list)
    """Commands whose decision raised something other than a refusal (a bug)."""
    decided: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Traced commands only: when each decision started and ended (ns since the epoch)."""
    unrecorded: dict[int, Problem] = field(default_factory=dict)
    """A process's steps refused as `not_yet` on a state read afresh: answered, not committed."""
    stale: list[BatchAggregate] = field(default_factory=list)
    """Aggregates whose cached state gave a `not_yet` refusal: read again and decided anew."""


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


def plan(
    registry: Registry,
    envelopes: Sequence[CommandEnvelope],
    aggregate: BatchAggregate,
    lookups: dict[str, Any],
    delivery: Delivery,
    round_: Round,
    traced: bool = False,
) -> None:
    """Decide the aggregate's waiting commands in order, each on the state the one
    before it leaves, and plan their commits (expected version and writer chained)."""
    known = aggregate.known or NOTHING
    for index in aggregate.waiting:
        env = envelopes[index]
        spec = registry.spec(env.type)
        if traced and env.traceparent:
            round_.decided[index] = (tracing.now_ns(), 0)
        try:
            command = registry.decode_body(env.type, env.body)
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
            if env.internal and isinstance(exc, CommandRejected) and exc.not_yet:
                # a process's step ahead of its aggregate (a failover took writes back): not
                # recorded, so asking again decides anew; on a cached state, read it first
                if not aggregate.loaded:
                    round_.stale.append(aggregate)
                    return
                round_.unrecorded[index] = exc.to_problem()
                continue
            # a refusal is a decision too: it holds only if the state it saw is current
            request = _refusal(env, aggregate, known, exc.to_problem(), delivery)
            round_.planned.append(Planned(index, aggregate, request, known))
            continue
        except Exception:
            log.exception("deciding %s %s failed", env.type, env.command_id)
            round_.broken.append(index)
            continue
        finally:
            if index in round_.decided:
                round_.decided[index] = (round_.decided[index][0], tracing.now_ns())
        request, after = _success(registry, env, spec, aggregate, known, decision, delivery)
        round_.planned.append(Planned(index, aggregate, request, after))
        known = after


def _success(
    registry: Registry,
    env: CommandEnvelope,
    spec: CommandSpec[Any, Any],
    aggregate: BatchAggregate,
    known: Known,
    decision: Decision[Any],
    delivery: Delivery,
) -> tuple[CommitRequest, Known]:
    at = now()
    stored = [
        StoredEvent(
            type=tag_of(event),
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
    statuses += _followed(registry, aggregate, env, decision, at)
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
        track=int(at * 1000) if spec.tracked else 0,
    )
    return request, after


def _followed(
    registry: Registry,
    aggregate: BatchAggregate,
    env: CommandEnvelope,
    decision: Decision[Any],
    at: float,
) -> list[StatusWrite]:
    """Status changes of the command this aggregate's events are steps of (if any): its id
    derives from the aggregate's."""
    follower = registry.follower(aggregate.kind.name)
    if follower is None or follower.follow is None or env.type == follower.name:
        return []
    origin = command_id_for(aggregate.partition, env.aggregate_id)
    return command_status.followed(origin, follower.follow, decision.events, at)


def _refusal(
    env: CommandEnvelope,
    aggregate: BatchAggregate,
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
