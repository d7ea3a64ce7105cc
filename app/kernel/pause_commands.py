"""Operators pause and resume a consumer, as commands: authorized, idempotent, journaled.

PauseConsumer stores the pause (kernel/pauses.py), which every partition loop of the group
honours within a second; ResumeConsumer removes it. Both are async admin commands run by the
command worker, like the dead-letter actions, so the console shows their status live.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from app.kernel import pauses
from app.kernel.bus import CommandBus
from app.kernel.dead_letter_commands import ConsumerName, OperatorCommand, unknown_consumer
from app.kernel.messages import CommandEnvelope, Outcome
from app.kernel.registry import CommandSpec, Runner
from app.kernel.validation import PLAIN_TEXT, PLAIN_TEXT_RULE

PauseReason = Annotated[
    str, msgspec.Meta(max_length=200, pattern=PLAIN_TEXT, description=PLAIN_TEXT_RULE)
]


class PauseConsumer(OperatorCommand, frozen=True):
    consumer: ConsumerName
    reason: PauseReason = ""


class ResumeConsumer(OperatorCommand, frozen=True):
    consumer: ConsumerName


def pause_runner(groups: Mapping[str, str]) -> Runner:
    """`groups`: consumer name (as the status page shows it) → consumer group."""

    async def run(envelope: CommandEnvelope, bus: CommandBus) -> Outcome:
        command = bus.registry.decode_body(envelope.type, envelope.body)
        group = groups.get(command.consumer)
        if group is None:
            return await unknown_consumer(bus, envelope, command.consumer)
        if isinstance(command, PauseConsumer):
            await pauses.pause(bus.redis, group, envelope.sender or "", command.reason)
        else:
            await pauses.resume(bus.redis, group)
        return await bus.finish(envelope, "succeeded")

    return run


def pause_specs(groups: Mapping[str, str], roles: frozenset[str]) -> list[CommandSpec[Any, Any]]:
    """The two commands, for a registry: `roles` may send them (admins)."""
    runner = pause_runner(groups)
    return [
        CommandSpec(command, None, _no_aggregate, roles=roles, mode="async", runner=runner)
        for command in (PauseConsumer, ResumeConsumer)
    ]


def _no_aggregate(command: Any) -> str:
    return ""
