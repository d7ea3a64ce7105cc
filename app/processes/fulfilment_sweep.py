"""The fulfilment process's sweeper: orders a failover left stuck, or that ended without their
effects being checked.

Without REDIS_WAIT_REPLICAS a failover may lose a write the process already acted on: the
order's partition may lose OrderStockReserved after the process moved on (so its next event
never comes), a product's partition may lose the hold MarkOrderReserved relied on, or the
release, sale or return of an order that has ended. With it a step only acts on what the
replicas hold too, but two failures at once may still lose one. Either way nothing stays
stuck:

Every PlaceOrder is among its partition's running commands (kernel/running.py) until this
sweeper has settled it. One with no change for SWEEP_AFTER_SECONDS is looked at from its
order's state:

* still in flight (placed, reserved, paid): driven on by the process (`Fulfilment.drive`),
  with the same step ids, so what landed is not done again and what was lost runs anew;
* ended: the steps its end implies — each line sold (confirmed, shipped), released
  (rejected, cancelled before payment) or returned (cancelled once paid), and a cancelled
  paid order's refund — are looked up by their dedup records; a step whose record is missing
  was lost (or is still to come) and runs again under its id. A charge that may have been
  taken without an answer (rejected `payment_unavailable`, cancelled before payment) is
  voided again: the gateway gives money back once per refund key.

A failover may also lose a whole order (its PlaceOrder accepted, OrderPlaced read by the
process, then gone with its partition) while a product's partition keeps the hold the process
took for it. So each hold (ReserveStock, `tracked`) is among its product's partition's
running commands too, and is looked at the same way: its order gone, the hold is released
under the order's release step id; its order in flight, it is looked at again a deadline
later; its order ended, the step that end implies for its line (sold, released, returned) is
looked up by its dedup record like an ended order's, and run again if it is missing — the
product's partition may have lost that step after the order's own entry was settled (the
hold's entry, removed after the step, comes back with the hold).

A settled order or hold leaves the index; the others are looked at again one deadline later.
What showed it settled is checked again in the script that removes its entry, on its
partition (kernel/running.py): an ended order's final status, a hold's step record. So a
failover between this sweeper's reads and that removal, setting the partition back to before
the order ended or the step landed, leaves the entry, and a later sweep finds what is
missing. A sweep costs a round trip for the due ids, one for their orders, one for the steps'
records, one batch for what runs again and one for the index — per 100 entries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import msgspec

from app.aggregates import ORDER
from app.domain import orders, products
from app.kernel import keys
from app.kernel.bus import CommandBus
from app.kernel.handlers import INFRA_ERRORS
from app.kernel.messages import SYSTEM, CommandEnvelope
from app.kernel.running import Proof, RunningCommands
from app.processes.fulfilment import RESERVE, Fulfilment

log = logging.getLogger(__name__)

BATCH = 100
IN_FLIGHT = frozenset({"placed", "reserved", "paid"})
SOLD = frozenset({"confirmed", "shipped"})
REFUNDED = " refunded"
"""What MarkOrderRefunded appends to an order's payment ref."""


@dataclass
class Swept:
    """What one sweep of a partition found (for tests and logs)."""

    driven: int = 0
    rerun: int = 0
    released: int = 0
    """Holds whose order is gone, released."""
    settled: int = 0


class FulfilmentSweep:
    def __init__(
        self,
        fulfilment: Fulfilment,
        bus: CommandBus,
        running: RunningCommands,
        quiet_seconds: float,
        batch: int = BATCH,
    ) -> None:
        self._fulfilment = fulfilment
        self._bus = bus
        self._running = running
        self._quiet = quiet_seconds
        self._batch = batch
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def attach(self) -> Fulfilment:
        """The process, ticking this sweeper (a quarter of the deadline apart)."""
        self._fulfilment.sweeper = self.tick
        self._fulfilment.tick_seconds = max(0.2, self._quiet / 4)
        return self._fulfilment

    async def tick(self, partition: int) -> None:
        """A sweep of the partition in the background, unless one is still running."""
        self._background(f"sweep:{partition}", self._swept(partition))

    async def _swept(self, partition: int) -> None:
        swept = await self.sweep(partition)
        if swept.driven or swept.rerun or swept.released:
            log.warning(
                "fulfilment partition %d: %d stuck orders driven on, %d lost steps run again,"
                " %d holds of lost orders released",
                partition,
                swept.driven,
                swept.rerun,
                swept.released,
            )

    async def sweep(self, partition: int) -> Swept:
        """Look at the partition's orders that are due, once."""
        swept = Swept()
        due = await self._running.due(partition, self._quiet, self._batch)
        if not due:
            return swept
        holds = {c: hold for c in due if (hold := _hold(c)) is not None}
        order_ids = [holds[c][0] if c in holds else c.rpartition("-")[0] for c in due]
        found = await asyncio.gather(*(self._bus.load(ORDER, o) for o in order_ids))
        settled: dict[str, list[Proof]] = {}
        again: list[str] = []
        ended: list[tuple[str, orders.Order]] = []
        lost: dict[str, CommandEnvelope] = {}
        implied: dict[str, list[CommandEnvelope]] = {}
        for command_id, order in zip(due, found, strict=True):
            if command_id in holds:
                order_id, sku = holds[command_id]
                if order is None:  # its order is gone: nothing will ever settle the hold
                    release = products.ReleaseStock(sku, order_id)
                    lost[command_id] = self._step(order_id, f"release.{sku}", release)
                elif order.status in IN_FLIGHT:
                    again.append(command_id)
                else:  # ended: the step its end implies for this line must be there
                    implied[command_id] = self._implied(order, sku)
            elif order is None:  # never placed: nothing to settle
                settled[command_id] = []
            elif order.order_id in self._fulfilment.active:
                again.append(command_id)
            elif order.status in IN_FLIGHT:
                again.append(command_id)
                swept.driven += 1
                self._background(f"drive:{order.order_id}", self._fulfilment.drive(order))
            else:
                ended.append((command_id, order))
                implied[command_id] = self._implied(order)
        if implied:
            missing = await self._missing(implied)
            rerun = {env.command_id: env for steps in missing.values() for env in steps}
            swept.rerun = len(rerun)
            await self._run_again(list(rerun.values()))
            refused = await self._give_money_back([order for _, order in ended])
            for command_id, order in ended:
                if command_id in missing or order.order_id in refused:
                    again.append(command_id)
                else:  # its steps elsewhere are not checked again: each hold's entry is
                    settled[command_id] = [Proof(keys.command_status(partition, command_id), True)]
            for command_id in holds.keys() & implied.keys():
                if command_id in missing:
                    again.append(command_id)
                else:
                    settled[command_id] = self._records(implied[command_id])
        if lost:
            await self._run_again(list(lost.values()))
            swept.released = len(lost)
            settled |= {command_id: self._records([env]) for command_id, env in lost.items()}
        swept.settled = await self._running.update(partition, settled, again)
        return swept

    def _records(self, steps: list[CommandEnvelope]) -> list[Proof]:
        """The steps' dedup records: a hold's entry leaves only with them (settle_running.lua),
        so a failover that loses the step after the sweeper read it brings the entry back."""
        return [Proof(keys.dedup(self._bus.partition(env), env.command_id)) for env in steps]

    # --- the steps an ended order implies -----------------------------------------------------

    def _implied(self, order: orders.Order, sku: str | None = None) -> list[CommandEnvelope]:
        """The product steps its end implies, one per line (or for `sku`'s line only)."""
        order_id = order.order_id
        paid = _was_paid(order)
        line_steps: list[tuple[str, Any]] = []
        for line in order.lines:
            if sku is not None and line.sku != sku:
                continue
            if order.status in SOLD:
                command: msgspec.Struct = products.CommitStock(line.sku, order_id, line.quantity)
                line_steps.append((f"commit.{line.sku}", command))
            elif order.status == "cancelled" and paid:
                command = products.ReturnStock(line.sku, order_id, line.quantity)
                line_steps.append((f"return.{line.sku}", command))
            else:
                line_steps.append(
                    (f"release.{line.sku}", products.ReleaseStock(line.sku, order_id))
                )
        return [self._step(order_id, step, command) for step, command in line_steps]

    def _step(self, order_id: str, step: str, command: msgspec.Struct) -> CommandEnvelope:
        """One of the order's steps, under the id the process gives it."""
        base_id = f"{order_id}.{step}"
        return self._bus.envelope(command, SYSTEM, base_id=base_id, internal=True)

    async def _missing(
        self, implied: dict[str, list[CommandEnvelope]]
    ) -> dict[str, list[CommandEnvelope]]:
        """Per entry, its implied steps with no dedup record (one round trip)."""
        flat = [env for steps in implied.values() for env in steps]
        async with self._bus.redis.pipeline(transaction=False) as pipe:
            for env in flat:
                pipe.exists(keys.dedup(self._bus.partition(env), env.command_id))
            found = iter(await pipe.execute())
        missing: dict[str, list[CommandEnvelope]] = {}
        for entry, steps in implied.items():
            lost = [env for env in steps if not next(found)]
            if lost:
                missing[entry] = lost
        return missing

    async def _run_again(self, envelopes: list[CommandEnvelope]) -> None:
        if not envelopes:
            return
        outcomes = await self._bus.execute_batch(envelopes, "queued")
        for env, outcome in zip(envelopes, outcomes, strict=True):
            if outcome.error is not None:
                log.error("%s run again: %s", env.command_id, outcome.error.detail)

    async def _give_money_back(self, ended: list[orders.Order]) -> set[str]:
        """Void again what may have been charged without an answer; refund a paid cancelled
        order whose refund has no record. Returns the orders whose gateway did not answer."""
        work: dict[str, Coroutine[Any, Any, None]] = {}
        for order in ended:
            order_id = order.order_id
            refunded = order.payment_ref.endswith(REFUNDED)
            if order.status == "rejected" and order.reason == "payment_unavailable":
                work[order_id] = self._fulfilment.void(order_id)
            elif order.status != "cancelled" or refunded:
                continue
            elif _was_paid(order):
                work[order_id] = self._fulfilment.refund(order_id, order.total_cents)
            else:
                work[order_id] = self._fulfilment.void(order_id, refund_key=f"refund:{order_id}")
        results = await asyncio.gather(*work.values(), return_exceptions=True)
        failed = set()
        for order_id, result in zip(work, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("giving %s's money back failed: %r", order_id, result)
                failed.add(order_id)
        return failed

    # --- background work ----------------------------------------------------------------------

    def _background(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` unless work of that name is still running."""
        if name in self._tasks:
            work.close()
            return
        task = asyncio.create_task(self._logged(name, work))
        self._tasks[name] = task
        task.add_done_callback(lambda _t: self._tasks.pop(name, None))

    @staticmethod
    async def _logged(name: str, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except INFRA_ERRORS as exc:
            log.warning("%s: redis unavailable (%s); the next sweep goes on", name, exc)
        except Exception:
            log.exception("%s failed", name)


def _hold(command_id: str) -> tuple[str, str] | None:
    """(order id, sku) of a hold's id (the process's `<order>.reserve.<sku>` step), else None."""
    order_id, reserve, sku = command_id.rpartition("-")[0].partition(f".{RESERVE}.")
    return (order_id, sku) if reserve else None


def _was_paid(order: orders.Order) -> bool:
    """The order was charged (its payment ref, with or without the refund's mark)."""
    return bool(order.payment_ref.removesuffix(REFUNDED))


def sweeping(
    bus: CommandBus, fulfilment: Fulfilment, running: RunningCommands, quiet_seconds: float
) -> Fulfilment:
    """The fulfilment process with its sweeper attached."""
    return FulfilmentSweep(fulfilment, bus, running, quiet_seconds).attach()
