"""A command's status record: accepted → [processing] → succeeded | failed, with steps.

This module says what a status is and chooses every status write: the view its sender
reads (`status_view`), and the writes a commit carries (`succeeded`, `refused`, `closed`,
`followed`; the commit applies them atomically with the command's effects). It does no
I/O: the status scripts and the one reader are in kernel/command_status_store.py.

A fast command goes from `accepted` to its outcome in its commit. `processing` is written
only for work a person can see running: a process that goes on after the commit (PlaceOrder),
a long runner (ImportCatalog), or a batch the worker is slow to finish.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import msgspec

from app.kernel.clock import iso, now
from app.kernel.commit import StatusWrite
from app.kernel.messages import FINAL_STATUSES, CommandEnvelope, Delivery, Problem, Step

FINAL = FINAL_STATUSES
"""The statuses a command ends in (declared in kernel/messages.py, where commit.py can see it)."""
POSITION = "$position"
"""A status field value the commit replaces with its position."""

_step_decoder = msgspec.json.Decoder(Step)
_problem_decoder = msgspec.json.Decoder(Problem)


class StepView(msgspec.Struct, frozen=True):
    name: str
    at: str | None


class Progress(msgspec.Struct, frozen=True):
    done: int
    total: int


class QueuePlace(msgspec.Struct, frozen=True):
    """Where a queued command stood when it was accepted: commands ahead, and an estimate."""

    ahead: int
    estimate_seconds: float | None


class CommandStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The public shape of GET /api/commands/<id> (the sender is not part of it)."""

    command_id: str
    type: str
    status: str
    accepted_at: str | None
    completed_at: str | None
    steps: list[StepView]
    progress: Progress | None
    error: Problem | None
    position: str | None
    queue: QueuePlace | None = None


class StoredStatus(msgspec.Struct, frozen=True):
    sender: str
    view: CommandStatus


class StatusChange(msgspec.Struct, frozen=True):
    """A step of a long-running command, and maybe its end (e.g. from its aggregate's events)."""

    step: str = ""
    status: Literal["succeeded", "failed"] | None = None
    error: Problem | None = None


def step_json(name: str, at: float | None = None) -> str:
    return msgspec.json.encode(Step(name, now() if at is None else at)).decode()


# --- the choice: what a commit records of a command --------------------------------------

StatusChoice = tuple[str, list[StatusWrite]]
"""A command's outcome status (what its dedup record keeps) and the status writes its commit
applies: none for an internal command (a process's step has no status of its own)."""


def decided(
    env: CommandEnvelope, delivery: Delivery, *, complete: bool, step: str, at: float
) -> StatusChoice:
    """A command its aggregate accepted: `succeeded`, or `processing` at `step` while a
    process goes on after the commit."""
    outcome = "succeeded" if complete else "processing"
    if env.internal:
        return outcome, []
    if complete:
        return outcome, [_finished(env, "succeeded", None, delivery, at)]
    return outcome, [_running(env, step, delivery, at)]


def refused(env: CommandEnvelope, error: Problem, delivery: Delivery) -> StatusChoice:
    """A command refused, or one that could not run at all: `failed`, with its error."""
    return "failed", [] if env.internal else [_finished(env, "failed", error, delivery)]


def closed(
    env: CommandEnvelope, status: Literal["succeeded", "failed"], error: Problem | None
) -> StatusChoice:
    """A runner's last word on its command (a runner's command is always queued)."""
    return status, [_finished(env, status, error, "queued")]


def followed(
    command_id: str,
    follow: Callable[[Any], StatusChange | None],
    events: Iterable[msgspec.Struct],
    at: float,
) -> list[StatusWrite]:
    """The steps (and maybe the end) of a long-running command that its aggregate's new
    events are, committed with them."""
    writes = []
    for event in events:
        change = follow(event)
        if change is not None:
            writes.append(_changed(command_id, change, at))
    return writes


# --- the writes ---------------------------------------------------------------------------


def _opening(env: CommandEnvelope, delivery: Delivery) -> tuple[dict[str, str], list[str]]:
    """A command run inline has no record yet: its commit creates it, `accepted` step first."""
    fields = {"type": env.type, "sender": env.sender or "", "accepted_at": str(env.accepted_at)}
    steps = [step_json("accepted", env.accepted_at)] if delivery == "inline" else []
    return fields, steps


def _finished(
    env: CommandEnvelope,
    status: Literal["succeeded", "failed"],
    error: Problem | None,
    delivery: Delivery,
    at: float | None = None,
) -> StatusWrite:
    fields, steps = _opening(env, delivery)
    at = now() if at is None else at
    fields.update(status=status, completed_at=str(at), position=POSITION)
    if error is not None:
        fields.update(error=msgspec.json.encode(error).decode(), error_code=error.code)
    steps.append(step_json(status, at))
    return StatusWrite(id=env.command_id, fields=fields, steps=steps, final=True)


def _running(env: CommandEnvelope, step: str, delivery: Delivery, at: float) -> StatusWrite:
    """The command goes on after its commit (a process will finish it): `processing`, and
    among its partition's running commands until its process settled it."""
    fields, steps = _opening(env, delivery)
    fields.update(status="processing", position=POSITION)
    steps.append(step_json(step or "processing"))
    return StatusWrite(id=env.command_id, fields=fields, steps=steps, track=_ms(at))


def _changed(command_id: str, change: StatusChange, at: float) -> StatusWrite:
    """A step (or the end) of another command, committed with the events that caused it."""
    fields = {"position": POSITION}
    steps = [step_json(change.step, at)] if change.step else []
    if change.status is not None:
        fields.update(status=change.status, completed_at=str(at))
        if change.error is not None:
            fields.update(
                error=msgspec.json.encode(change.error).decode(), error_code=change.error.code
            )
        steps.append(step_json(change.status, at))
    return StatusWrite(
        id=command_id,
        fields=fields,
        steps=steps,
        final=change.status is not None,
        track=_ms(at),
    )


def _ms(at: float) -> int:
    return int(at * 1000)


# --- the view its sender reads ---------------------------------------------------------------


_place_decoder = msgspec.json.Decoder(QueuePlace)


def status_view(command_id: str, record: dict[str, str], steps: list[str]) -> CommandStatus:
    progress = None
    if record.get("progress_total"):
        progress = Progress(int(record.get("progress_done", "0")), int(record["progress_total"]))
    error = record.get("error")
    queue = record.get("queue")
    status = record.get("status", "accepted")
    return CommandStatus(
        command_id=command_id,
        type=record.get("type", ""),
        status=status,
        accepted_at=iso(record.get("accepted_at")),
        completed_at=iso(record.get("completed_at")),
        steps=[StepView(s.name, iso(s.at)) for s in map(_step_decoder.decode, steps)],
        progress=progress,
        error=_problem_decoder.decode(error) if error else None,
        position=record.get("position") or None,
        queue=_place_decoder.decode(queue) if queue and status not in FINAL else None,
    )
