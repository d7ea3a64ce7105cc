"""The order fulfilment process manager, driven by the order events of each partition.

    OrderPlaced        → reserve every line (one ReserveStock per Product) → MarkOrderReserved
                         any line refused → release every line → RejectOrder(reason)
    OrderStockReserved → charge the gateway → MarkOrderPaid
                         declined / no answer → release → RejectOrder(reason)
    OrderPaid          → CommitStock for every line (reserved units become sold) → ConfirmOrder
                         (PlaceOrder succeeds in that commit, its position covering the stock)
    OrderCancelled     → release (or, once paid, return) every line; refund if paid; void
                         whatever a charge in flight may have taken if it was reserved
    OrderRejected      → (payment_unavailable) void whatever the unanswered charge took

The process does not wait for its own events to come back before the next step: having
reserved an order's stock it charges at once, having been paid it sells the stock and
confirms, all in the task that took the OrderPlaced. The events of those steps, read later,
find the order already past them (remembered here) and are skipped undecoded; after a
crash or a takeover nothing is remembered, and each event drives its step as written above.

Every step is a command with an id derived from the order and the step, so when an event is
delivered again (a crash before the ack) each step returns its recorded outcome instead of
running twice; the gateway gets idempotency keys of its own. The commands of one step (one
per line) go out together: one round trip. The order's status is the process's stored
progress. Orders of one partition are handled concurrently; events of one order strictly in
order. Events of other kinds are acknowledged without being decoded.

A traced event (its entry's `tp`) is handled in a `process` span of its trace, and each step
in a span of its own, so the step's commands (and so their events and statuses, and the
gateway's calls) continue that trace.

An order whose next event never comes (a failover lost a write the process had acted on) is
driven on from its state by the sweeper (processes/fulfilment_sweep.py, every `tick`), with
the same step ids; `drive` is that entry point. A paid order whose hold a failover lost is
sold from what is available (CommitStock carries the quantity); if that is not enough, the
order is cancelled and its money given back.

One job, read best whole (hence longer than most modules): every step of the saga and every
compensation, side by side.

Over 300 lines, one job: every step of the process, in the order an order takes them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import assert_never

import msgspec

from app.adapters.payment_gateway import PaymentUnavailable, SimulatedGateway
from app.aggregates import ORDER
from app.domain import orders, products
from app.kernel import keys, tracing, unions
from app.kernel.bus import CommandBus
from app.kernel.consumer import Entry
from app.kernel.event_entries import event_head, stored_event, traceparent
from app.kernel.log_context import working_for
from app.kernel.messages import SYSTEM, CommandEnvelope, Outcome
from app.kernel.partitions import command_id_for
from app.kernel.positions import covering

log = logging.getLogger(__name__)

GROUP = "process.fulfilment"
Reacts = (
    orders.OrderPlaced
    | orders.OrderStockReserved
    | orders.OrderPaid
    | orders.OrderCancelled
    | orders.OrderRejected
)
"""The events this process reacts to; every other event is acknowledged undecoded."""
HANDLED = unions.tags(Reacts)
DRIVEN: dict[type[Reacts], int] = {orders.OrderStockReserved: 1, orders.OrderPaid: 2}
"""Events of steps this process drives itself, by how far an order must be to skip them."""
_DRIVEN_TAGS = {unions.tag(event): step for event, step in DRIVEN.items()}
REMEMBERED = 100_000
RESERVE = "reserve"
"""The step that holds a line's units: `<order>.reserve.<sku>` (a tracked command, which the
sweeper settles if its order is lost)."""
UNSELLABLE = "stock_lost"
"""The reason of an order cancelled by the process: paid, but a failover lost its hold and
the units are gone meanwhile."""


class Fulfilment:
    group = GROUP

    def __init__(self, bus: CommandBus, gateway: SimulatedGateway) -> None:
        self._bus = bus
        self._gateway = gateway
        self._events: msgspec.json.Decoder[Reacts] = msgspec.json.Decoder(Reacts)
        self._past: OrderedDict[str, int] = OrderedDict()
        """Orders this process drove forward itself, and how far (see DRIVEN)."""
        self.active: set[str] = set()
        """Orders this process is working on right now (the sweeper leaves them be)."""
        self.sweeper: Callable[[int], Awaitable[None]] | None = None
        """What `tick` runs (processes/fulfilment_sweep.py sets it); None: no sweeper."""
        self.tick_seconds = 0.0

    def stream(self, partition: int) -> str:
        return keys.events(partition)

    def key_of(self, entry: Entry) -> str | None:
        """Events of one order in order, different orders side by side; others skipped."""
        head = event_head(entry.fields)
        return head.aggregate_id if head.type in HANDLED else None

    async def handle(self, partition: int, entries: list[Entry]) -> None:
        """In order. The consumer runs different orders' entries side by side (key_of)."""
        for entry in entries:
            head = event_head(entry.fields)
            if head.type not in HANDLED:
                continue
            if self._past.get(head.aggregate_id, 0) >= _DRIVEN_TAGS.get(head.type, 99):
                continue  # a step this process already took on its own
            stored = stored_event(entry.fields)
            span = tracing.processing(
                self.stream(partition),
                GROUP,
                entry.id,
                traceparent(entry.fields),
                {"cqrs.event.type": head.type},
            )
            self.active.add(head.aggregate_id)
            try:  # its log lines name the order's PlaceOrder (whose id derives from the order's)
                with (
                    tracing.current_span(span),
                    working_for(command_id_for(partition, head.aggregate_id)),
                ):
                    await self.react(self._events.decode(stored.data))
            except BaseException as exc:
                tracing.end(span, type(exc).__name__)
                raise
            finally:
                self.active.discard(head.aggregate_id)
            tracing.end(span)

    def _reached(self, order_id: str, step: int) -> None:
        self._past[order_id] = max(step, self._past.get(order_id, 0))
        self._past.move_to_end(order_id)
        while len(self._past) > REMEMBERED:
            self._past.popitem(last=False)

    async def skip(self, partition: int, entry: Entry) -> None:
        """A dead-lettered event needs no marking: the consumer group acks it."""

    async def tick(self, partition: int) -> None:
        """Called by the partition's loop every `tick_seconds` while its lease is held."""
        if self.sweeper is not None:
            await self.sweeper(partition)

    async def drive(self, order: orders.Order) -> None:
        """Take an order on from its state (the sweeper's call, for an order whose next event
        never came): each step with its own id, so what landed before is not done again."""
        order_id = order.order_id
        if order_id in self.active:
            return
        self.active.add(order_id)
        try:
            match order.status:
                case "placed":
                    await self._reserve(order_id, order.lines)
                case "reserved":
                    await self._charge(order_id, fresh=True)
                case "paid":
                    await self._confirm(order_id)
                case _:
                    pass
        finally:
            self.active.discard(order_id)

    async def react(self, event: Reacts) -> None:
        match event:
            case orders.OrderPlaced():
                await self._reserve(event.order_id, event.lines)
            case orders.OrderStockReserved():
                await self._charge(event.order_id, fresh=True)
            case orders.OrderPaid():
                await self._confirm(event.order_id)
            case orders.OrderCancelled():
                await self._after_cancel(event)
            case orders.OrderRejected():
                if event.reason == "payment_unavailable":
                    await self.void(event.order_id)
            case _:
                assert_never(event)

    def _step(
        self, command: msgspec.Struct, order_id: str, step: str, after: str = ""
    ) -> CommandEnvelope:
        return self._bus.envelope(
            command, SYSTEM, base_id=f"{order_id}.{step}", internal=True, after=after
        )

    async def _run(
        self, command: msgspec.Struct, order_id: str, step: str, after: str = ""
    ) -> Outcome:
        with tracing.span(f"fulfilment {step}"):
            return await self._bus.execute(self._step(command, order_id, step, after))

    async def _each_line(
        self,
        order_id: str,
        lines: Sequence[orders.OrderLine],
        step: str,
        command: Callable[[orders.OrderLine], msgspec.Struct],
    ) -> list[Outcome]:
        """One command per line (each its product's), all in one batch."""
        with tracing.span(f"fulfilment {step}"):
            envelopes = [
                self._step(command(line), order_id, f"{step}.{line.sku}") for line in lines
            ]
            return await self._bus.execute_batch(envelopes, "queued")

    async def _reserve(self, order_id: str, lines: Sequence[orders.OrderLine]) -> None:
        """The order is read while its stock is reserved: marking it reserved then waits for
        no read (one round trip less per order)."""
        outcomes, _ = await asyncio.gather(
            self._each_line(
                order_id,
                lines,
                RESERVE,
                lambda line: products.ReserveStock(line.sku, order_id, line.quantity),
            ),
            self._bus.warm(ORDER, order_id),
        )
        refused = next((o.error for o in outcomes if o.error is not None), None)
        if refused is None:
            held = covering(o.position for o in outcomes)
            marked = await self._run(orders.MarkOrderReserved(order_id), order_id, "reserved", held)
            if marked.error is None:
                self._reached(order_id, DRIVEN[orders.OrderStockReserved])
                await self._charge(order_id, fresh=False)
                return
            # the order moved on without us (cancelled meanwhile): give the stock back
            await self._release(lines, order_id)
            return
        await self._release(lines, order_id)
        await self._run(
            orders.RejectOrder(order_id, refused.code, refused.detail), order_id, "reject"
        )

    async def _release(self, lines: Sequence[orders.OrderLine], order_id: str) -> None:
        await self._each_line(
            order_id, lines, "release", lambda line: products.ReleaseStock(line.sku, order_id)
        )

    async def _charge(self, order_id: str, *, fresh: bool) -> None:
        """`fresh`: read the order (else what this process committed last will do: a cancel
        it has not seen makes MarkOrderPaid fail, and the money goes back)."""
        order = await self._bus.load(ORDER, order_id, cached=not fresh)
        if order is None or order.status != "reserved":
            return  # cancelled (or already past this step): nothing to charge
        try:
            charge = await self._gateway.charge(
                f"charge:{order_id}", order.card_token, order.total_cents
            )
        except PaymentUnavailable as exc:
            await self._release(order.lines, order_id)
            rejected = await self._run(
                orders.RejectOrder(order_id, "payment_unavailable", str(exc)), order_id, "reject"
            )
            if rejected.error is not None:
                # cancelled while we were charging: no rejection, so no void follows it; the
                # charge may still have been taken, and the unpaid cancel only releases stock
                await self.void(order_id, refund_key=f"refund:{order_id}")
            return
        if not charge.approved:
            await self._release(order.lines, order_id)
            await self._run(
                orders.RejectOrder(order_id, "payment_declined", "The card was declined"),
                order_id,
                "reject",
            )
            return
        paid = await self._run(orders.MarkOrderPaid(order_id, charge.charge_id), order_id, "paid")
        if paid.error is not None:
            now = await self._bus.load(ORDER, order_id)
            if now is None or now.status in ("placed", "reserved"):
                return  # not yet: a failover took the order back; it is driven on again
            # cancelled while we were charging: the money goes back
            refund = await self._gateway.refund(
                f"refund:{order_id}", charge.charge_id, order.total_cents
            )
            await self._run(orders.MarkOrderRefunded(order_id, refund), order_id, "refunded")
            return
        self._reached(order_id, DRIVEN[orders.OrderPaid])
        await self._confirm(order_id)

    async def _confirm(self, order_id: str) -> None:
        """Paid: the held units become sold, then the order is confirmed, its outcome's
        position covering the stock it took (so a read of the catalog can wait for it)."""
        order = await self._bus.load(ORDER, order_id, cached=True)
        if order is None:
            return
        committed = await self._each_line(
            order_id,
            order.lines,
            "commit",
            lambda line: products.CommitStock(line.sku, order_id, line.quantity),
        )
        unsold = [
            line for line, o in zip(order.lines, committed, strict=True) if o.error is not None
        ]
        if unsold:
            await self._cannot_sell(order_id, unsold)
            return
        sold = covering(o.position for o in committed)
        await self._run(orders.ConfirmOrder(order_id), order_id, "confirm", sold)

    async def _cannot_sell(self, order_id: str, unsold: Sequence[orders.OrderLine]) -> None:
        """A failover lost the order's hold on these lines and their units are gone: cancel
        the paid order (its cancel returns what was sold and refunds). The lines never sold
        get their return step recorded first, as a release of nothing, so that cancel gives
        back only what it took."""
        await self._each_line(
            order_id, unsold, "return", lambda line: products.ReleaseStock(line.sku, order_id)
        )
        reason = "Its stock could not be held: the order was cancelled and refunded"
        await self._run(orders.CancelOrder(order_id, reason), order_id, UNSELLABLE)

    async def void(self, order_id: str, refund_key: str | None = None) -> None:
        """The gateway never answered: a charge may still have been taken. Give it back.

        `refund_key`: the refund's idempotency key (default `void:charge:<order>`); a void
        racing a cancel's refund uses the cancel's, so the money goes back once."""
        refund = await self._gateway.void(f"charge:{order_id}", refund_key)
        if refund is not None:
            await self._run(orders.MarkOrderRefunded(order_id, refund), order_id, "refunded")

    async def _after_cancel(self, event: orders.OrderCancelled) -> None:
        order_id = event.order_id
        if event.paid:  # its stock was committed when it was paid (or is still held)
            await self._each_line(
                order_id,
                event.lines,
                "return",
                lambda line: products.ReturnStock(line.sku, order_id, line.quantity),
            )
        else:
            await self._release(event.lines, order_id)
        if event.paid:
            await self.refund(order_id, event.total_cents)
        elif event.previous_status == "reserved":
            # a charge may have been in flight (its answer lost): whatever it took goes back
            await self.void(order_id, refund_key=f"refund:{order_id}")

    async def refund(self, order_id: str, total_cents: int) -> None:
        """A paid order was cancelled: its charge goes back (once, by its refund key)."""
        order = await self._bus.load(ORDER, order_id)
        charge_id = order.payment_ref if order is not None else ""
        refund = await self._gateway.refund(f"refund:{order_id}", charge_id, total_cents)
        await self._run(orders.MarkOrderRefunded(order_id, refund), order_id, "refunded")
