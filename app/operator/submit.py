"""Sending an admin command from the command line and waiting for its outcome.

The CLI acts as an operator: an actor named after the person at the terminal, with the admin
role. Its commands go through the same intake as the console's (authorized, idempotent,
journaled); the command worker runs them.
"""

from __future__ import annotations

import asyncio
import getpass
import time
from typing import Any

from app.kernel.command_status import FINAL, CommandStatus
from app.kernel.errors import ProblemError, ValidationFailed
from app.kernel.messages import Actor, Problem
from app.kernel.partitions import partition_of_command
from app.services import Services

WAIT_SECONDS = 180.0


def operator() -> Actor:
    return Actor(f"cli:{getpass.getuser()}", frozenset({"admin"}))


class Refused(Exception):
    """The intake refused the command (invalid, forbidden): nothing was accepted."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


async def submit_and_wait(
    services: Services,
    document: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    wait: float = WAIT_SECONDS,
) -> CommandStatus:
    """Validate and submit a command document (`type` and fields) as the operator; the
    command's status once final (or when `wait` runs out)."""
    try:
        command = services.intake.convert(document)
        reply = await services.intake.submit(command, operator(), idempotency_key=idempotency_key)
    except (ValidationFailed, ProblemError) as exc:
        raise Refused(exc.to_problem()) from None
    if reply.error is not None:
        raise Refused(reply.error)
    partition = partition_of_command(reply.command_id, services.settings.partitions)
    assert partition is not None
    deadline = time.monotonic() + wait
    while True:
        stored = await services.statuses.get(partition, reply.command_id)
        assert stored is not None, f"no status for {reply.command_id}"
        if stored.view.status in FINAL or time.monotonic() > deadline:
            return stored.view
        await asyncio.sleep(0.2)


def describe(status: CommandStatus) -> str:
    """One line: the outcome, and why if it failed."""
    if status.status == "succeeded":
        return f"{status.type} {status.command_id}: succeeded"
    if status.error is not None:
        return f"{status.type} {status.command_id}: failed: {status.error.detail}"
    return (
        f"{status.type} {status.command_id}: still {status.status} — is a command worker "
        "running? It will run when one is."
    )
