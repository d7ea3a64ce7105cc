"""The write side's front door: validate → authorize → idempotency → run now or enqueue.

Transport-free: the web layer hands in bytes (or a parsed form) and an Actor, and turns the
Reply into an HTTP response. The order of the checks is the contract: a body is structurally
valid before anyone asks who sent it, and nobody's command runs before they are authorized.
An async command is accepted in one round trip: one script claims its Idempotency-Key,
writes its `accepted` status and queues it.

In a traced request each check is a span (decode, authorize, idempotency), and so is the
command's acceptance: `send <queue>` when it is queued, `execute <type>` when it runs here.
That span names the command (`cqrs.command.id`) and is the context its envelope carries.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import msgspec
from opentelemetry.trace import Span

from app.kernel import keys, tracing
from app.kernel.backlog import Backlog
from app.kernel.bus import CommandBus
from app.kernel.command_status import FINAL, QueuePlace
from app.kernel.command_status_store import CommandStatusStore
from app.kernel.errors import Forbidden, ProblemError, Unauthenticated, ValidationFailed
from app.kernel.idempotency import (
    IdempotencyRecord,
    IdempotencySlot,
    IdempotencyStore,
    same_request,
    valid_key,
)
from app.kernel.log_context import working_for
from app.kernel.messages import Actor, CommandEnvelope, FieldError, Outcome
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


class Overloaded(ProblemError):
    """Too many queued commands: new ones of this kind are refused, so accepted ones stay fast."""

    status = 503

    def __init__(self, retry_after: int) -> None:
        super().__init__("overloaded", f"Too many orders are waiting; try again in {retry_after} s")
        self.retry_after = retry_after


class CommandIntake:
    def __init__(
        self,
        bus: CommandBus,
        statuses: CommandStatusStore,
        idempotency: IdempotencyStore,
        backlog: Backlog,
        *,
        backlog_limit: int = 0,
        same_slot_scripts: bool = False,
    ) -> None:
        """`backlog_limit`: queued commands past which `shed_when_busy` commands get 503
        (0: never). `same_slot_scripts`: a script may only touch keys of one slot (Cluster)."""
        self.bus = bus
        self.registry = bus.registry
        self._statuses = statuses
        self._idempotency = idempotency
        self._backlog = backlog
        self._backlog_limit = backlog_limit
        self._same_slot = same_slot_scripts

    def decode(self, raw: bytes) -> msgspec.Struct:
        with tracing.span("decode"):
            return self.registry.public_decoder.decode_json(raw)

    def convert(self, document: dict[str, Any]) -> msgspec.Struct:
        """From an HTML form: strings are converted to the fields' types."""
        with tracing.span("decode"):
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
        with tracing.span("authorize"):
            if not actor.authenticated:
                raise Unauthenticated()
            if not spec.permits(actor):
                raise Forbidden(f"{tag} needs the role {' or '.join(sorted(spec.roles))}")
        if idempotency_key is not None and not valid_key(idempotency_key):
            raise ValidationFailed(
                [FieldError("Idempotency-Key", "Must be 1-128 visible ASCII characters")]
            )
        mode = "async" if spec.mode == "async" or prefer_async else "sync"
        place = None
        if mode == "async":
            place = await self._admit(spec.shed_when_busy)
        fingerprint = (
            self._idempotency.fingerprint(tag, msgspec.json.encode(command))
            if idempotency_key
            else ""
        )
        if spec.prepare is not None:
            command = await spec.prepare(command, actor)
        slot = None
        if idempotency_key:
            assert actor.username is not None
            slot = self._idempotency.slot(actor.username, idempotency_key)
        envelope = self.bus.envelope(command, actor, partition=slot.partition if slot else None)
        mine = IdempotencyRecord(fingerprint, envelope.command_id, envelope.aggregate_id, mode)
        with working_for(envelope.command_id):
            return await self._accept(envelope, slot, mine, mode, place)

    async def _accept(
        self,
        envelope: CommandEnvelope,
        slot: IdempotencySlot | None,
        mine: IdempotencyRecord,
        mode: str,
        place: QueuePlace | None,
    ) -> Reply:
        if mode == "async":
            return await self._enqueue(envelope, slot, mine, place)
        if slot is not None:
            with tracing.span("idempotency"):
                first = await self._idempotency.claim(slot, mine)
            if first is not None:
                return await self._again(first, mine, envelope, place)
        with tracing.span(f"execute {envelope.type}") as span:
            envelope = _continuing(envelope, span)
            return from_outcome(await self.bus.execute(envelope, "inline"))

    async def _admit(self, shed_when_busy: bool) -> QueuePlace:
        """Refuse a sheddable command while the backlog is over its limit; else its place."""
        reading = await self._backlog.current()
        if shed_when_busy and self._backlog_limit and reading.in_flight >= self._backlog_limit:
            estimate = reading.estimate_seconds(reading.in_flight - self._backlog_limit + 1)
            raise Overloaded(max(1, math.ceil(estimate or 1.0)))
        self._backlog.admitted()
        return QueuePlace(reading.in_flight, reading.estimate_seconds(reading.in_flight))

    async def _enqueue(
        self,
        envelope: CommandEnvelope,
        slot: IdempotencySlot | None,
        mine: IdempotencyRecord,
        place: QueuePlace | None,
    ) -> Reply:
        partition = self.bus.partition(envelope)
        claim = None
        if slot is not None:
            if self._same_slot and slot.partition != partition:
                with tracing.span("idempotency"):
                    first = await self._idempotency.claim(slot, mine)
                if first is not None:
                    return await self._again(first, mine, envelope, place)
            else:
                claim = (slot, mine, self._idempotency.ttl)
        with tracing.span("send", kind=tracing.PRODUCER) as span:
            envelope = _continuing(envelope, span, keys.commands(partition))
            result = await self._statuses.enqueue(
                partition, envelope, idempotency=claim, place=place
            )
        if result.claimed_by is not None:
            return await self._again(result.claimed_by, mine, envelope, place)
        return accepted(envelope.command_id)

    async def _again(
        self,
        first: IdempotencyRecord,
        mine: IdempotencyRecord,
        envelope: CommandEnvelope,
        place: QueuePlace | None,
    ) -> Reply:
        """The key was claimed before: replay that command's answer, or refuse another body."""
        if not same_request(first, mine):
            raise IdempotencyKeyReused()
        replay = await self._replay(first)
        if replay is not None:
            return replay
        # claimed before, but nothing was accepted (a crash between the two): run it now,
        # under the first id
        envelope = msgspec.structs.replace(
            envelope, command_id=first.command_id, aggregate_id=first.aggregate_id
        )
        if first.mode == "async":
            partition = self.bus.partition(envelope)
            await self._statuses.enqueue(partition, envelope, place=place)
            return accepted(envelope.command_id)
        return from_outcome(await self.bus.execute(envelope, "inline"))

    async def _replay(self, first: IdempotencyRecord) -> Reply | None:
        """The first request's answer, once its status is there (None: nothing was accepted).
        With replication on, what the answer rests on is confirmed on the replicas first: the
        first request may have been refused `replication_timeout` on this very write."""
        partition = partition_of_command(first.command_id, self.bus.partitions)
        assert partition is not None
        deadline = time.monotonic() + REPLAY_WAIT_SECONDS
        while True:
            stored = await self._statuses.get(partition, first.command_id)
            if stored is None:
                return None
            view = stored.view
            if first.mode == "async" or view.status in FINAL or time.monotonic() > deadline:
                await self._statuses.confirm(partition, first.command_id)
                if first.mode == "async":
                    return accepted(first.command_id)
                return from_outcome(
                    Outcome(
                        command_id=first.command_id,
                        status=view.status,
                        position=view.position,
                        error=view.error,
                    )
                )
            await asyncio.sleep(0.02)


def _continuing(envelope: CommandEnvelope, span: Span | None, queue: str = "") -> CommandEnvelope:
    """The envelope in the context of its acceptance's span (named after the command, and
    the queue it is sent to, if any), when it is traced."""
    if span is None:
        return envelope
    span.set_attributes(
        {tracing.COMMAND_ID: envelope.command_id, tracing.COMMAND_TYPE: envelope.type}
    )
    if queue:
        span.update_name(f"send {queue}")
        span.set_attributes(tracing.messaging("send", queue, message_id=envelope.command_id))
    return msgspec.structs.replace(envelope, traceparent=tracing.of(span))


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
