"""In-memory stand-ins for what the fulfilment process manager talks to: the bus, the gateway.

`InMemoryBus` runs each command's real decide function (the storefront's registry) on
aggregates held in a dict, and answers a command id it has run before with its first
outcome, as the bus's dedup record does. It records every command sent, in order, with the
id the process gave it. `FakeGateway` answers by card token and records every call.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import msgspec

from app.adapters.payment_gateway import ChargeResult, PaymentUnavailable
from app.domain import orders as o
from app.domain.products import Product
from app.kernel.errors import CommandRejected
from app.kernel.messages import SYSTEM, Actor, CommandEnvelope, Outcome
from app.kernel.partitions import partition_of
from app.kernel.positions import format_position
from app.kernel.registry import AggregateKind, Context, Registry
from app.wiring import build_registry

NOW = 1_700_000_000.0
PARTITIONS = 4
ALICE = Actor("alice", frozenset({"customer"}))


class Sent(NamedTuple):
    """A command a process sent: the id it gave it, the command, the position to cover."""

    command_id: str
    command: msgspec.Struct
    after: str = ""


async def _no_tokens(_card: str) -> str:
    raise AssertionError("the process never sees a card number")


async def _no_runner(_envelope: CommandEnvelope, _bus: Any) -> Outcome:
    raise AssertionError("the process runs no bulk command")


class InMemoryBus:
    def __init__(self, *aggregates: Product | o.Order) -> None:
        self.registry: Registry = build_registry(_no_tokens, _no_runner, {})
        self.states: dict[str, msgspec.Struct] = {}
        for state in aggregates:
            self.states[state.sku if isinstance(state, Product) else state.order_id] = state
        self.sent: list[Sent] = []
        self.batches: list[list[str]] = []
        """The command ids of each call, as they went out together."""
        self.events: list[msgspec.Struct] = []
        """Every event the commands decided, in order."""
        self.outcomes: dict[str, Outcome] = {}
        self._entry_ids = itertools.count(1)

    # --- what the process calls ---------------------------------------------------------------

    def envelope(
        self,
        command: msgspec.Struct,
        actor: Actor,
        *,
        base_id: str | None = None,
        internal: bool = False,
        after: str = "",
    ) -> CommandEnvelope:
        spec = self.registry.spec(type(command).__name__)
        assert base_id is not None, "a process step names its command"
        return CommandEnvelope(
            command_id=base_id,
            type=spec.name,
            body=msgspec.Raw(msgspec.json.encode(command)),
            aggregate_id=spec.aggregate_id(command),
            sender=actor.username,
            roles=tuple(sorted(actor.roles)),
            accepted_at=NOW,
            internal=internal,
            after=after,
        )

    async def execute(self, envelope: CommandEnvelope, delivery: str = "queued") -> Outcome:
        (outcome,) = await self.execute_batch([envelope], delivery)
        return outcome

    async def execute_batch(
        self, envelopes: Sequence[CommandEnvelope], delivery: str
    ) -> list[Outcome]:
        self.batches.append([envelope.command_id for envelope in envelopes])
        return [self._run(envelope) for envelope in envelopes]

    async def load(
        self, kind: AggregateKind[Any], aggregate_id: str, *, cached: bool = False
    ) -> Any:
        state = self.states.get(aggregate_id)
        return state if isinstance(state, kind.state_type) else None

    async def warm(self, kind: AggregateKind[Any], aggregate_id: str) -> None:
        """Nothing to read ahead: every state is in memory."""

    # --- what a test does -----------------------------------------------------------------------

    def send(self, command: msgspec.Struct, actor: Actor = SYSTEM) -> list[msgspec.Struct]:
        """Run a command from outside the process (a customer's cancel, say); its events."""
        before = len(self.events)
        outcome = self._decide(command, actor, f"outside-{len(self.outcomes)}")
        assert outcome.error is None, outcome.error
        return self.events[before:]

    def place_order(
        self, order_id: str, lines: Mapping[str, int], card_token: str, actor: Actor = ALICE
    ) -> o.OrderPlaced:
        """PlaceOrder as the command worker decides it (the products' prices looked up)."""
        requested = [o.LineRequest(sku, quantity) for sku, quantity in lines.items()]
        ctx = Context(f"place-{order_id}", actor, NOW, order_id, lookups=dict(self.states.items()))
        decision = o.place(o.PlaceOrder(requested, "4242", card_token), None, ctx)
        assert decision.state is not None
        self.states[order_id] = decision.state
        (placed,) = decision.events
        assert isinstance(placed, o.OrderPlaced)
        self.events.append(placed)
        return placed

    def steps(self) -> list[tuple[str, msgspec.Struct]]:
        """(command id, command) of everything sent, in order."""
        return [(sent.command_id, sent.command) for sent in self.sent]

    def state(self, aggregate_id: str) -> Any:
        return self.states[aggregate_id]

    # --- running ------------------------------------------------------------------------------

    def _run(self, envelope: CommandEnvelope) -> Outcome:
        command = self.registry.decode_body(envelope.type, envelope.body)
        self.sent.append(Sent(envelope.command_id, command, envelope.after))
        if envelope.command_id in self.outcomes:  # run before: its recorded outcome, again
            return self.outcomes[envelope.command_id]
        return self._decide(command, envelope.actor, envelope.command_id)

    def _decide(self, command: msgspec.Struct, actor: Actor, command_id: str) -> Outcome:
        spec = self.registry.spec(type(command).__name__)
        aggregate_id = spec.aggregate_id(command)
        assert spec.decide is not None
        ctx = Context(command_id, actor, NOW, aggregate_id, lookups=dict(self.states))
        try:
            decision = spec.decide(command, self.states.get(aggregate_id), ctx)
        except CommandRejected as refused:
            outcome = Outcome(command_id=command_id, status="failed", error=refused.to_problem())
        else:
            if decision.state is not None:
                self.states[aggregate_id] = decision.state
            self.events.extend(decision.events)
            position = None
            if decision.events:
                partition = partition_of(aggregate_id, PARTITIONS)
                position = format_position({partition: (next(self._entry_ids), 0)})
            outcome = Outcome(command_id=command_id, status="succeeded", position=position)
        self.outcomes[command_id] = outcome
        return outcome


APPROVED = "tok_approved"
DECLINED = "tok_declined"
SILENT = "tok_silent"
"""Charged, but the answer is lost: every retry times out (PaymentUnavailable)."""


class FakeGateway:
    def __init__(self, while_charging: Callable[[], object] | None = None) -> None:
        """`while_charging`: what happens elsewhere while a charge is out (a cancel, say)."""
        self.calls: list[tuple[Any, ...]] = []
        self.charges: dict[str, ChargeResult] = {}
        """Charges taken, by idempotency key."""
        self.void_keys: list[str] = []
        """The refund key of each void."""
        self._while_charging = while_charging

    async def charge(self, idempotency_key: str, token: str, amount_cents: int) -> ChargeResult:
        self.calls.append(("charge", idempotency_key, token, amount_cents))
        if self._while_charging is not None:
            self._while_charging()
        if idempotency_key not in self.charges:
            taken = ChargeResult(f"ch_{len(self.charges) + 1}", token != DECLINED, amount_cents)
            self.charges[idempotency_key] = taken
        if token == SILENT:
            raise PaymentUnavailable("the gateway did not answer")
        return self.charges[idempotency_key]

    async def refund(self, idempotency_key: str, charge_id: str, amount_cents: int) -> str:
        self.calls.append(("refund", idempotency_key, charge_id, amount_cents))
        return f"re_{charge_id}"

    async def void(self, charge_key: str, refund_key: str | None = None) -> str | None:
        self.calls.append(("void", charge_key))
        self.void_keys.append(refund_key or f"void:{charge_key}")
        taken = self.charges.get(charge_key)
        return f"void_{taken.charge_id}" if taken is not None and taken.approved else None
