"""The envelopes every command, event and outcome travels in."""

from __future__ import annotations

from typing import Literal, get_args

import msgspec

Delivery = Literal["inline", "queued"]
"""How a command reached the bus: run inline while its sender waits, or taken from a queue."""

FinalStatus = Literal["succeeded", "failed"]
"""How a command ends: a status that never changes again."""
FINAL_STATUSES: frozenset[str] = frozenset(get_args(FinalStatus))
"""Declared once: the status scripts get it through `load_script`, pages through `<body>`."""
OUTCOME_STATUSES: frozenset[str] = FINAL_STATUSES | {"processing"}
"""What a commit records as a command's outcome: its end, or `processing` (it goes on)."""


class Actor(msgspec.Struct, frozen=True):
    """Who sends a command: decided from the session, never from the command body."""

    username: str | None
    roles: frozenset[str] = frozenset()

    @property
    def authenticated(self) -> bool:
        return self.username is not None

    def has_role(self, role: str) -> bool:
        return role in self.roles


ANONYMOUS = Actor(username=None)
SYSTEM = Actor(username="system", roles=frozenset({"system"}))


class FieldError(msgspec.Struct, frozen=True):
    path: str
    message: str


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem object; `errors` only for validation."""

    type: str
    title: str
    status: int
    code: str
    detail: str = ""
    errors: list[FieldError] | None = None


class CommandEnvelope(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A decoded, authorized command on its way to a handler (inline or via the queue)."""

    command_id: str
    type: str
    body: msgspec.Raw
    aggregate_id: str
    sender: str | None
    roles: tuple[str, ...] = ()
    accepted_at: float
    internal: bool = False
    """Internal commands (sent by processes) keep a dedup record but no public status."""
    after: str = ""
    """A position the command's outcome must also cover: effects a process committed
    elsewhere before it (e.g. the stock of an order, in other partitions)."""
    traceparent: str = ""
    """W3C trace context of the span that made the command, when it is traced: its handling,
    and the events and statuses its commit writes, continue that trace (kernel/tracing.py)."""

    @property
    def actor(self) -> Actor:
        return Actor(username=self.sender, roles=frozenset(self.roles))


class StoredEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A domain event as written to a partition's events stream."""

    type: str
    aggregate: str
    aggregate_id: str
    version: int
    command_id: str
    at: float
    data: msgspec.Raw


class Outcome(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a command came to; also the dedup record a replay returns."""

    command_id: str
    status: str
    position: str | None = None
    error: Problem | None = None


class Step(msgspec.Struct, frozen=True):
    name: str
    at: float
