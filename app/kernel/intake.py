"""The write side's front door: validate → authorize → idempotency → run now or enqueue.

Transport-free: the web layer hands in bytes (or a parsed form) and an Actor, and turns the
Reply into an HTTP response. The order of the checks is the contract: a body is structurally
valid before anyone asks who sent it, and nobody's command runs before they are authorized.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec

from app.kernel.bus import CommandBus
from app.kernel.command_status import FINAL, CommandStatusStore
from app.kernel.errors import Forbidden, ProblemError, Unauthenticated, ValidationFailed
from app.kernel.idempotency import IdempotencyRecord, IdempotencyStore, same_request, valid_key
from app.kernel.messages import Actor, FieldError, Outcome
from app.kernel.partitions import partition_of_command

REPLAY_WAIT_SECONDS = 5.0


class Reply(msgspec.Struct, frozen=True):
    """What the client gets back: a command id, a status, a position at most."""

    status_code: int
    command_id: str
    status: str
    position: str | None = None
    location: str | None = None
    error: Any = None


class IdempotencyKeyReused(ProblemError):
    status = 409

    def __init__(self) -> None:
        super().__init__("idempotency_key_reused", "This key was used with a different request")


class CommandIntake:
    def __init__(
        self, bus: CommandBus, statuses: CommandStatusStore, idempotency: IdempotencyStore
    ) -> None:
        self.bus = bus
        self.registry = bus.registry
        self._statuses = statuses
        self._idempotency = idempotency

    def decode(self, raw: bytes) -> msgspec.Struct:
        return self.registry.public_decoder.decode_json(raw)

    def convert(self, document: dict[str, Any]) -> msgspec.Struct:
        """From an HTML form: strings are converted to the fields' types."""
        return self.registry.public_decoder.convert(document, strict=False)

    async def submit(
        self,
        command: msgspec.Struct,
        actor: Actor,
        *,
        idempotency_key: str | None = None,
        prefer_async: bool = False,
    ) -> Reply:
        tag = type(command).__struct_config__.tag
        assert isinstance(tag, str)
        spec = self.registry.spec(tag)
        if not actor.authenticated:
            raise Unauthenticated()
        if spec.roles and not (spec.roles & actor.roles):
            raise Forbidden(f"{tag} needs the role {' or '.join(sorted(spec.roles))}")
        if idempotency_key is not None and not valid_key(idempotency_key):
            raise ValidationFailed(
                [FieldError("Idempotency-Key", "Must be 1-128 visible ASCII characters")]
            )
        mode = "async" if spec.mode == "async" or prefer_async else "sync"
        fingerprint = (
            self._idempotency.fingerprint(tag, msgspec.json.encode(command))
            if idempotency_key
            else ""
        )
        if spec.prepare is not None:
            command = await spec.prepare(command, actor)
        envelope = self.bus.envelope(command, actor)
        if idempotency_key:
            assert actor.username is not None
            mine = IdempotencyRecord(fingerprint, envelope.command_id, envelope.aggregate_id, mode)
            first = await self._idempotency.claim(actor.username, idempotency_key, mine)
            if first is not None:
                if not same_request(first, mine):
                    raise IdempotencyKeyReused()
                replay = await self._replay(first)
                if replay is not None:
                    return replay
                # claimed before, but nothing was accepted: run it now, under the first id
                envelope = msgspec.structs.replace(
                    envelope, command_id=first.command_id, aggregate_id=first.aggregate_id
                )
                mode = first.mode
        if mode == "async":
            await self._statuses.enqueue(self.bus.partition(envelope), envelope)
            return accepted(envelope.command_id)
        return from_outcome(await self.bus.execute(envelope, fresh=True))

    async def _replay(self, first: IdempotencyRecord) -> Reply | None:
        partition = partition_of_command(first.command_id, self.bus.partitions)
        assert partition is not None
        deadline = time.monotonic() + REPLAY_WAIT_SECONDS
        while True:
            stored = await self._statuses.get(partition, first.command_id)
            if stored is None:
                return None
            if first.mode == "async":
                return accepted(first.command_id)
            view = stored.view
            if view.status in FINAL or time.monotonic() > deadline:
                return from_outcome(
                    Outcome(
                        command_id=first.command_id,
                        status=view.status,
                        position=view.position,
                        error=view.error,
                    )
                )
            await asyncio.sleep(0.02)


def accepted(command_id: str) -> Reply:
    return Reply(
        status_code=202,
        command_id=command_id,
        status="accepted",
        location=f"/api/commands/{command_id}",
    )


def from_outcome(outcome: Outcome) -> Reply:
    if outcome.error is not None:
        return Reply(
            status_code=outcome.error.status,
            command_id=outcome.command_id,
            status=outcome.status,
            error=outcome.error,
        )
    if outcome.status != "succeeded":
        return accepted(outcome.command_id)
    return Reply(
        status_code=200,
        command_id=outcome.command_id,
        status=outcome.status,
        position=outcome.position,
    )
