"""Chaos in the default run: kill -9 one process of each kind — web, commands, projector,
process, notifier — and Redis itself, during a burst of orders and restocks, with two of
every process running and orders waiting mid-charge at the payment gateway's gate.

Nothing is restarted by hand while the stack recovers (Redis is restarted on its own files,
as a supervisor would; the workers heal by themselves: the survivors take the dead one's
partitions over when its lease and heartbeat lapse, and everyone reconnects after Redis).
Then every accepted command reaches its final status within a bound; no event, payment or
notification happened twice and every aggregate's versions are contiguous; stock is
conserved; every read model equals a rebuild from the streams. After Redis is killed and
back, no order is left `processing`: every one is confirmed. The recovery time of each
fault is printed (`-s`): kill → every status final, and → every consumer idle.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from app.services import Services, build_services
from tests.support.chaos import (
    ChaosStack,
    Sent,
    assert_nothing_lost_or_doubled,
    burst,
    running_chaos_stack,
    send,
    set_gate,
)
from tests.support.orders_helpers import pipeline_groups, statuses, wait_all_final, wait_idle
from tests.support.polling import eventually

RECOVERY_BOUND_SECONDS = 60.0
STOCK = 1000
FAULTS = ("web", "commands", "projector", "process", "notifier", "redis")


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosStack]:
    with running_chaos_stack(tmp_path_factory.mktemp("chaos")) as stack:
        yield stack


@pytest.fixture
async def services(chaos: ChaosStack) -> Iterator[Services]:
    made = build_services(chaos.settings)
    try:
        yield made  # type: ignore[misc]
    finally:
        await made.close()


async def _final(services: Services, ids: list[str]) -> int:
    current = await statuses(services, ids)
    return sum(1 for status in current.values() if status in ("succeeded", "failed"))


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_killed_process_or_redis_heals_without_a_hand(
    chaos: ChaosStack, services: Services, fault: str
) -> None:
    chaos.heal()
    tag = f"{fault.upper()[:4]}-{int(time.time() * 1000) % 100000:05d}"
    skus = [f"CH-{tag}-{n}" for n in range(4)]
    async with httpx.AsyncClient(timeout=10) as http:
        created = [
            await send(chaos, http, "admin", {**body, "initial_stock": STOCK})
            for body in (
                {"type": "CreateProduct", "sku": sku, "name": sku, "price_cents": 100}
                for sku in skus
            )
        ]
    final = await wait_all_final(services, created, within=RECOVERY_BOUND_SECONDS)
    assert set(final.values()) == {"succeeded"}, final  # orders may name them now
    set_gate(chaos, "closed")
    sent: list[Sent] = []
    sending = asyncio.create_task(burst(chaos, skus, sent, orders=40, restocks=20))
    await eventually(
        lambda: _count(sent),
        until=lambda n: n >= 25,
        timeout=RECOVERY_BOUND_SECONDS,
        message="half the burst accepted (its orders waiting at the gate)",
    )

    killed_at = time.monotonic()
    chaos.kill(fault)
    if fault == "redis":
        await eventually(
            lambda: _readiness(chaos), until=lambda code: code == 503, message="outage seen"
        )
        chaos.redis.restart()  # on the same append-only file, as a supervisor would
    set_gate(chaos, "open")
    await asyncio.wait_for(sending, timeout=RECOVERY_BOUND_SECONDS)
    ids = [s.command_id for s in sent]
    await eventually(
        lambda: _final(services, ids),
        until=lambda n: n == len(ids),
        timeout=RECOVERY_BOUND_SECONDS,
        interval=0.05,
        message=f"every accepted command final after killing {fault}",
    )
    final_after = time.monotonic() - killed_at
    await wait_idle(services, pipeline_groups(services.settings), within=RECOVERY_BOUND_SECONDS)
    idle_after = time.monotonic() - killed_at
    print(
        f"\nCHAOS {fault}: {len(ids)} commands; every status final {final_after:.1f} s "
        f"after the kill, every consumer idle after {idle_after:.1f} s"
    )
    await assert_nothing_lost_or_doubled(services, sent, dict.fromkeys(skus, STOCK))


async def _count(sent: list[Sent]) -> int:
    return len(sent)


async def _readiness(chaos: ChaosStack) -> int:
    async with httpx.AsyncClient(timeout=5) as http:
        return (await http.get(f"{chaos.live_webs()[0]}/readyz")).status_code
