"""Failover in the default run: a Redis Cluster master killed with SIGKILL under a burst of
orders, with every acknowledgement waiting for one replica (REDIS_WAIT_REPLICAS=1).

Two web processes and two of every worker run on a 3-master cluster with one replica each
(tests/support/chaos_failover.py). Orders and restocks are sent through both web
processes, each retried under its Idempotency-Key until it is accepted; once half are,
while the orders wait at the payment gateway's gate, the master holding the most partitions
is killed. Its replica is promoted a few seconds later and every process finds it by itself;
the dead node is started again (as a supervisor would) and rejoins as a replica. Then every
command whose acceptance a client saw must reach its final state, nothing may be applied
twice, and stock, payments, notifications and read models must agree (the chaos checks of
tests/support/chaos.py). The seconds from the kill to the promotion, to every status final
and to every consumer idle are printed (`-s`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from app.services import Services, build_services
from tests.support.chaos import Sent, assert_nothing_lost_or_doubled, burst, send, set_gate
from tests.support.chaos_failover import (
    FailoverStack,
    fail_over,
    partitions_of,
    running_failover_stack,
    victim,
)
from tests.support.orders_helpers import pipeline_groups, statuses, wait_all_final, wait_idle
from tests.support.polling import eventually

BOUND_SECONDS = 60.0
STOCK = 1000


@pytest.fixture(scope="module")
def failover(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FailoverStack]:
    with running_failover_stack(tmp_path_factory.mktemp("failover"), wait_replicas=1) as made:
        yield made


@pytest.fixture
async def services(failover: FailoverStack) -> AsyncIterator[Services]:
    made = build_services(failover.chaos.settings)
    try:
        yield made
    finally:
        await made.close()


async def _count(sent: list[Sent]) -> int:
    return len(sent)


async def _final(services: Services, ids: list[str]) -> int:
    current = await statuses(services, ids)
    return sum(1 for status in current.values() if status in ("succeeded", "failed"))


async def test_a_killed_master_fails_over_and_nothing_acknowledged_is_lost(
    failover: FailoverStack, services: Services
) -> None:
    chaos, cluster = failover.chaos, failover.cluster
    skus = [f"FO-{int(time.time() * 1000) % 100000:05d}-{n}" for n in range(4)]
    async with httpx.AsyncClient(timeout=10) as http:
        created = [
            await send(
                chaos,
                http,
                "admin",
                {
                    "type": "CreateProduct",
                    "sku": sku,
                    "name": sku,
                    "price_cents": 100,
                    "initial_stock": STOCK,
                },
            )
            for sku in skus
        ]
    final = await wait_all_final(services, created, within=BOUND_SECONDS)
    assert set(final.values()) == {"succeeded"}, final
    cluster.wait_in_sync()
    set_gate(chaos, "closed")
    sent: list[Sent] = []
    sending = asyncio.create_task(burst(chaos, skus, sent, orders=40, restocks=20))
    await eventually(
        lambda: _count(sent),
        until=lambda n: n >= 25,
        timeout=BOUND_SECONDS,
        message="half the burst accepted (its orders waiting at the gate)",
    )

    node = victim(cluster)
    lost_partitions = partitions_of(cluster, node)
    killed_at = time.monotonic()
    promoted_after = await asyncio.to_thread(fail_over, cluster, node)
    set_gate(chaos, "open")
    await asyncio.wait_for(sending, timeout=BOUND_SECONDS)
    ids = [s.command_id for s in sent]
    await eventually(
        lambda: _final(services, ids),
        until=lambda n: n == len(ids),
        timeout=BOUND_SECONDS,
        interval=0.05,
        message="every accepted command final after the failover",
    )
    final_after = time.monotonic() - killed_at
    await wait_idle(services, pipeline_groups(services.settings), within=BOUND_SECONDS)
    idle_after = time.monotonic() - killed_at
    print(
        f"\nFAILOVER (REDIS_WAIT_REPLICAS=1): master of partitions {lost_partitions} killed; "
        f"{len(ids)} commands; replica promoted {promoted_after:.1f} s after the kill, every "
        f"status final {final_after:.1f} s, every consumer idle {idle_after:.1f} s"
    )
    await assert_nothing_lost_or_doubled(services, sent, dict.fromkeys(skus, STOCK))
