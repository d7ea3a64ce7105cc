"""How the bus's work is measured: stage timings, outcomes, and spans of traced commands.

Each stage of a batch is timed once (the decisions one by one): the timings feed the
`Instruments` (metrics), and a traced command gets its own load, decide and commit spans from
them afterwards, children of its envelope's traceparent — which its events and statuses carry
on (kernel/tracing.py). Nothing is timed for tracing when no command of the batch is traced.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.kernel import tracing
from app.kernel.commit import CommitResult
from app.kernel.decisions import BatchAggregate, Round
from app.kernel.instruments import Instruments
from app.kernel.messages import CommandEnvelope, Outcome

Observer = Callable[[str, Outcome, float], None]
"""Told of each command a client sent: its type, its outcome and how long it took (s)."""


@dataclass
class RoundTiming:
    """When a traced round's shared round trips ran (ns since the epoch)."""

    loaded: tuple[int, int] | None = None


def timed(
    instruments: Instruments,
    envelopes: Sequence[CommandEnvelope],
    round_: Round,
    started: float,
    committing: float,
) -> None:
    """Each planned command spent the round's decisions and its commit round trip."""
    if not round_.planned:
        return
    decide, commit = committing - started, time.perf_counter() - committing
    stage = instruments.stage
    for planned in round_.planned:
        command_type = envelopes[planned.index].type
        stage(command_type, "decide", decide)
        stage(command_type, "commit", commit)


def traced(
    envelopes: Sequence[CommandEnvelope],
    pending: list[BatchAggregate],
    round_: Round,
    results: Sequence[CommitResult | Exception],
    timing: RoundTiming,
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


def observed(
    observer: Observer | None,
    envelopes: Sequence[CommandEnvelope],
    outcomes: Sequence[Outcome],
    started: float,
) -> None:
    """Tell the observer of each command a client sent (not of a process's steps)."""
    if observer is None:
        return
    took = time.perf_counter() - started
    for env, outcome in zip(envelopes, outcomes, strict=True):
        if not env.internal:
            observer(env.type, outcome, took)


def _answer(result: CommitResult | Exception) -> str:
    if isinstance(result, Exception):
        return "error"
    if result.outcome is None:
        return "conflict"
    return "duplicate" if result.duplicate else result.outcome.status
