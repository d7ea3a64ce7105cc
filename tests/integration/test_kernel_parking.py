"""Poison entries park, not skip: later entries of the same key wait behind a dead letter
while other keys flow on; a retry (after a fix) or a discard lets the key's entries through,
in order. Operators' requests are carried out by the partition's owner between batches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from app.kernel.consumer import Entry, PartitionedConsumer
from app.kernel.dead_letters import DeadLetters, LetterRequest, discarded
from app.kernel.leases import Leases
from app.services import Services
from tests.support.kernel_catalog import pending
from tests.support.polling import eventually

GROUP = "test.parking"


class Ledger:
    """Applies entries per key in order; fails on any entry marked `bad` until fixed."""

    group = GROUP

    def __init__(self) -> None:
        self.applied: list[tuple[str, str]] = []
        self.fixed = False

    def stream(self, partition: int) -> str:
        return f"test:parking:{partition}"

    def order_key(self, entry: Entry) -> str:
        return entry.fields["k"]

    async def handle(self, partition: int, entries: list[Entry]) -> None:
        if not self.fixed and any("bad" in e.fields for e in entries):
            raise ValueError("cannot apply this entry")
        self.applied += [(e.fields["k"], e.fields["n"]) for e in entries]

    async def skip(self, partition: int, entry: Entry) -> None:
        pass


async def _one() -> int:
    return 1


@pytest.fixture
async def running(services: Services) -> AsyncIterator[Ledger]:
    handler = Ledger()
    consumer = PartitionedConsumer(
        services.write, [handler], 1, Leases(services.write, "parking-test"), _one, block_ms=100
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop, tick=0.1))
    try:
        yield handler
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)


async def _add(services: Services, key: str, n: str, bad: bool = False) -> None:
    fields = {"k": key, "n": n, **({"bad": "1"} if bad else {})}
    await services.write.xadd("test:parking:0", fields)


async def _applied(handler: Ledger) -> list[tuple[str, str]]:
    return list(handler.applied)


async def _setup(services: Services, handler: Ledger) -> DeadLetters:
    await _add(services, "A", "1")
    await _add(services, "A", "2", bad=True)
    await _add(services, "B", "1")
    await _add(services, "A", "3")
    await _add(services, "B", "2")
    await eventually(
        lambda: _applied(handler),
        until=lambda a: ("B", "2") in a,
        message="the other key flows on",
    )
    letters = DeadLetters(services.write, GROUP)
    await eventually(
        letters.all, until=lambda found: len(found) == 2, message="poison and one waiting"
    )
    await eventually(
        lambda: pending(services.write, "test:parking:0", GROUP), until=lambda n: n == 0
    )
    assert handler.applied == [("A", "1"), ("B", "1"), ("B", "2")]
    await _add(services, "A", "4")  # arriving while parked: waits too
    await eventually(letters.all, until=lambda found: len(found) == 3)
    assert ("A", "4") not in handler.applied
    return letters


async def test_a_retried_poison_lets_its_key_through_in_order(
    services: Services, running: Ledger
) -> None:
    letters = await _setup(services, running)
    (poison, *waiting) = await letters.all()
    assert (poison.letter.key, poison.letter.fields["n"], poison.letter.behind) == ("A", "2", "")
    assert [w.letter.behind for w in waiting] == [poison.id, poison.id]
    assert await letters.parked(0) == {"A": poison.id}

    running.fixed = True
    await letters.request(0, poison.id, LetterRequest(action="retry", command_id="c1", by="admin"))
    outcome = await eventually(lambda: letters.outcome("c1"), message="request carried out")
    assert outcome is not None and outcome.ok, outcome
    assert running.applied[3:] == [("A", "2"), ("A", "3"), ("A", "4")]
    assert await letters.all() == [] and await letters.parked(0) == {}
    await _add(services, "A", "5")
    await eventually(lambda: _applied(running), until=lambda a: a[-1] == ("A", "5"))


async def test_a_discarded_poison_is_journaled_and_its_key_flows_again(
    services: Services, running: Ledger
) -> None:
    letters = await _setup(services, running)
    poison = (await letters.all())[0]
    request = LetterRequest(action="discard", command_id="c2", by="admin", reason="bad data")
    await letters.request(0, poison.id, request)
    outcome = await eventually(lambda: letters.outcome("c2"), message="request carried out")
    assert outcome is not None and outcome.ok, outcome
    assert running.applied[3:] == [("A", "3"), ("A", "4")]
    journal = await services.write.xrange(discarded(GROUP))
    assert len(journal) == 1 and "bad data" in journal[0][1]["e"]
    assert await letters.all() == []


async def test_a_retry_that_fails_again_keeps_the_key_parked(
    services: Services, running: Ledger
) -> None:
    letters = await _setup(services, running)
    poison = (await letters.all())[0]
    await letters.request(0, poison.id, LetterRequest(action="retry", command_id="c3", by="ops"))
    outcome = await eventually(lambda: letters.outcome("c3"), message="request carried out")
    assert outcome is not None and not outcome.ok and "failed again" in outcome.detail
    found = await letters.all()
    assert len(found) == 3
    renewed = [item for item in found if item.letter.fields["n"] == "2"]
    assert renewed[0].letter.attempts == poison.letter.attempts + 1
    assert await letters.parked(0) == {"A": renewed[0].id}
    assert ("A", "3") not in running.applied
