"""Operators' actions on dead letters, as commands: authorized, idempotent, journaled.

Retry one, discard one (with a reason), retry every letter of a consumer, or retry or discard
those of a consumer that match a filter (entry type, text in the error). Each is an async
admin command whose runner asks the owner of the letter's partition to act (see
kernel/parking.py) and waits for its answer, so the command's status says what happened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from app.kernel.bus import CommandBus
from app.kernel.dead_letters import (
    DeadLetters,
    Letter,
    LetterFilter,
    LetterRequest,
    RequestOutcome,
)
from app.kernel.errors import problem
from app.kernel.messages import CommandEnvelope, Outcome
from app.kernel.registry import CommandSpec, Runner
from app.kernel.validation import PLAIN_TEXT, PLAIN_TEXT_RULE

WAIT_SECONDS = 120.0
"""How long an action waits for the partition's owner to carry it out."""

ConsumerName = Annotated[
    str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_.]{0,63}\Z", description="a consumer's name")
]
LetterId = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9]{1,20}-[0-9]{1,20}\Z", description="a dead letter's id")
]
OperatorReason = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=200, pattern=PLAIN_TEXT, description=PLAIN_TEXT_RULE),
]


class OperatorCommand(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, frozen=True):
    """Base of the kernel's own commands (tagged by class name, like every command)."""


class RetryDeadLetter(OperatorCommand, frozen=True):
    consumer: ConsumerName
    letter_id: LetterId


class DiscardDeadLetter(OperatorCommand, frozen=True):
    consumer: ConsumerName
    letter_id: LetterId
    reason: OperatorReason


class RetryAllDeadLetters(OperatorCommand, frozen=True):
    consumer: ConsumerName


EntryType = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.()?-]{0,64}\Z", description="an entry's type")
]
ErrorText = Annotated[
    str, msgspec.Meta(max_length=200, pattern=PLAIN_TEXT, description=PLAIN_TEXT_RULE)
]


class RetryDeadLetters(OperatorCommand, frozen=True):
    """Retry a consumer's letters that match (those waiting behind them follow in order)."""

    consumer: ConsumerName
    entry_type: EntryType = ""
    error: ErrorText = ""


class DiscardDeadLetters(OperatorCommand, frozen=True):
    """Discard a consumer's letters that match, with a reason (each journaled)."""

    consumer: ConsumerName
    reason: OperatorReason
    entry_type: EntryType = ""
    error: ErrorText = ""


def heads(letters: list[Letter]) -> list[Letter]:
    """The letters a retry starts from: every unkeyed one, and the first of each key."""
    seen: set[tuple[int, str]] = set()
    found = []
    for item in sorted(letters, key=lambda i: (i.letter.partition, i.letter.entry_id)):
        chain = (item.letter.partition, item.letter.key)
        if item.letter.key and chain in seen:
            continue
        seen.add(chain)
        found.append(item)
    return found


async def unknown_consumer(bus: CommandBus, envelope: CommandEnvelope, name: str) -> Outcome:
    """An operator command naming no consumer this deployment has: refused (409)."""
    return await bus.finish(
        envelope, "failed", problem("unknown_consumer", 409, f"There is no consumer {name}")
    )


def dead_letter_runner(groups: Mapping[str, str]) -> Runner:
    """`groups`: consumer name (as the status page shows it) → consumer group."""

    async def run(envelope: CommandEnvelope, bus: CommandBus) -> Outcome:
        command = bus.registry.decode_body(envelope.type, envelope.body)
        group = groups.get(command.consumer)
        if group is None:
            return await unknown_consumer(bus, envelope, command.consumer)
        letters = DeadLetters(bus.redis, group)
        by = envelope.sender or ""
        action: Literal["retry", "discard"]
        if isinstance(command, RetryAllDeadLetters):
            targets = heads(await letters.all())
            action, reason = "retry", ""
        elif isinstance(command, RetryDeadLetters | DiscardDeadLetters):
            wanted = LetterFilter(command.entry_type, command.error)
            matching = [item for item in await letters.all() if wanted.matches(item.letter)]
            if isinstance(command, RetryDeadLetters):
                targets, action, reason = heads(matching), "retry", ""
            else:
                targets, action, reason = matching, "discard", command.reason
        else:
            letter = await letters.get(command.letter_id)
            if letter is None:
                return await bus.finish(
                    envelope,
                    "failed",
                    problem("unknown_dead_letter", 409, f"No dead letter {command.letter_id}"),
                )
            targets = [Letter(command.letter_id, letter)]
            action = "retry" if isinstance(command, RetryDeadLetter) else "discard"
            reason = getattr(command, "reason", "")
        requests = [
            (
                item.letter.partition,
                item.id,
                LetterRequest(
                    action=action,
                    command_id=f"{envelope.command_id}.{item.id}",
                    by=by,
                    reason=reason,
                ),
            )
            for item in targets
        ]
        await letters.request_all(requests)
        request_ids = [request.command_id for _, _, request in requests]
        outcomes = await _answers(letters, request_ids)
        failed = [o.detail for o in outcomes if not o.ok]
        if failed:
            detail = f"{len(failed)} of {len(outcomes)} did not go through: " + "; ".join(
                failed[:5]
            )
            finished = await bus.finish(
                envelope, "failed", problem("dead_letter_failed", 409, detail)
            )
        else:
            finished = await bus.finish(envelope, "succeeded")
        await letters.forget_outcomes(request_ids)  # after the finish: a repeat reads them
        return finished

    return run


async def _answers(letters: DeadLetters, request_ids: list[str]) -> list[RequestOutcome]:
    deadline = time.monotonic() + WAIT_SECONDS
    found: dict[str, RequestOutcome] = {}
    while len(found) < len(request_ids):
        waiting = [r for r in request_ids if r not in found]
        for request_id, outcome in zip(waiting, await letters.outcomes(waiting), strict=True):
            if outcome is not None:
                found[request_id] = outcome
        if len(found) == len(request_ids):
            break
        if time.monotonic() > deadline:
            late = RequestOutcome(False, "no owner carried the request out yet; it stays queued")
            found.update((r, late) for r in request_ids if r not in found)
            break
        await asyncio.sleep(0.1)
    return [found[r] for r in request_ids]


def dead_letter_specs(
    groups: Mapping[str, str], roles: frozenset[str]
) -> list[CommandSpec[Any, Any]]:
    """The commands, for a registry: `roles` may send them (admins)."""
    runner = dead_letter_runner(groups)
    return [
        CommandSpec(command, None, _no_aggregate, roles=roles, mode="async", runner=runner)
        for command in (
            RetryDeadLetter,
            DiscardDeadLetter,
            RetryAllDeadLetters,
            RetryDeadLetters,
            DiscardDeadLetters,
        )
    ]


def _no_aggregate(command: Any) -> str:
    return ""
