"""REDIS_WAIT_REPLICAS=1: an acknowledgement means "on the master and its replica".

The module runs a master with one replica, a web process, a command worker and a projector
waiting for one replica (300 ms at most). With the replica up, commands are answered as
always and the status page shows the replica. With the replica down, the writes still land
on the master, but nothing is acknowledged on them: `503 replication_timeout` with
Retry-After to the client, and the command worker leaves its entry pending. Once the
replica is back, a retry under the same Idempotency-Key gets the first command's id and
outcome, and the worker's entry is acknowledged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
import redis

from app.adapters.embedded_redis import free_port
from app.kernel import keys
from app.kernel.command_worker import GROUP as COMMANDS_GROUP
from app.kernel.idempotency import IdempotencyStore, decode_record
from app.kernel.partitions import partition_of_command
from tests.support.api_client import (
    Storefront,
    assert_problem,
    base_env,
    create_product,
    send,
    start_web,
    stop_together,
    unique_sku,
    wait_for_command,
)
from tests.support.polling import eventually_sync
from tests.support.processes import ProcessGroup
from tests.support.redis_server import ReplicaServer, running_redis, running_replica

PARTITIONS = 4


@dataclass
class Replicated:
    storefront: Storefront
    replica: ReplicaServer


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicated]:
    directory = tmp_path_factory.mktemp("replicated")
    (directory / "logs").mkdir()
    with (
        running_redis(directory / "master", appendonly=True) as master,
        running_replica(master, directory / "replica") as replica,
    ):
        env = base_env(master.url, REDIS_WAIT_REPLICAS="1", REDIS_WAIT_TIMEOUT_MS="300")
        group = ProcessGroup(directory / "logs", env)
        try:
            port = free_port()
            web = start_web(group, port)
            storefront = Storefront(master, group, port, web)
            storefront.start_workers(["commands", "projector"])
            yield Replicated(storefront, replica)
        finally:
            stop_together(group)


def restock(sku: str) -> dict[str, object]:
    return {"type": "RestockProduct", "sku": sku, "quantity": 3}


def pending(url: str, command_id: str) -> int:
    """Entries of the command's queue its worker took and has not acknowledged."""
    partition = partition_of_command(command_id, PARTITIONS)
    assert partition is not None
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        summary = client.xpending(keys.commands(partition), COMMANDS_GROUP)
        return int(summary["pending"])
    finally:
        client.close()


async def test_the_status_page_shows_the_replicas_acknowledgements_wait_for(
    replicated: Replicated,
) -> None:
    storefront = replicated.storefront
    async with storefront.client("admin") as admin:
        status = (await admin.get("/api/admin/status")).json()
    assert status["replication"] == {"wait_replicas": 1, "replicas": [1], "read_replicas": None}
    assert not [w for w in status["warnings"] if "REDIS_WAIT_REPLICAS" in w], status["warnings"]


async def test_without_its_replica_nothing_is_acknowledged_and_a_retry_gets_the_first_outcome(
    replicated: Replicated,
) -> None:
    storefront, replica = replicated.storefront, replicated.replica
    async with storefront.client("admin") as admin:
        sku, _ = await create_product(admin, stock=5)  # 200 only once the replica has it
        queued = await send(admin, restock(sku), Prefer="respond-async")
        assert queued.status_code == 202, queued.text
        await wait_for_command(admin, queued.json()["command_id"])

        create = {"type": "CreateProduct", "sku": unique_sku(), "name": "Mug", "price_cents": 9}
        replica.kill()
        try:
            refused = await send(admin, restock(sku), Prefer="respond-async", Idempotency_Key="r1")
            assert_problem(refused, 503, "replication_timeout")
            assert refused.headers["Retry-After"] == "1"
            created = await send(admin, create, Idempotency_Key="c1")
            assert_problem(created, 503, "replication_timeout")
            async with storefront.client("admin") as page:
                status = (await page.get("/api/admin/status")).json()
            assert status["replication"]["replicas"] == [0]
            assert any("REDIS_WAIT_REPLICAS=1" in w for w in status["warnings"]), status

            # the accepted restock is on the master: its worker commits it, but may not ack it
            accepted = await send(admin, restock(sku), Prefer="respond-async", Idempotency_Key="r1")
            assert_problem(accepted, 503, "replication_timeout")  # a retry is not confirmed either
            first = _stored_command_id(storefront, "admin", "r1")
            eventually_sync(
                lambda: pending(storefront.redis.url, first) > 0,
                timeout=30,
                message="the worker holds the restock unacknowledged",
            )
        finally:
            replica.start()
        replica.wait_linked()

        again = await send(admin, restock(sku), Prefer="respond-async", Idempotency_Key="r1")
        assert again.status_code == 202, again.text
        assert again.json()["command_id"] == first
        assert (await wait_for_command(admin, first))["status"] == "succeeded"
        eventually_sync(
            lambda: pending(storefront.redis.url, first) == 0,
            timeout=30,
            message="the worker acknowledged the restock once its replica had it",
        )
        made = await send(admin, create, Idempotency_Key="c1")
        assert made.status_code == 200, made.text  # created once: its commit was on the master
        position = (await wait_for_command(admin, first))["position"]
        product = await admin.get(f"/api/products/{sku}", params={"min_position": position})
    assert product.json()["available"] == 5 + 3 + 3, product  # two restocks, each once


def _stored_command_id(storefront: Storefront, user: str, key: str) -> str:
    """The command a user's Idempotency-Key claim names (read on the master)."""
    slot = IdempotencyStore(cast(Any, None), "", PARTITIONS).slot(user, key)
    client = redis.Redis.from_url(storefront.redis.url, decode_responses=True)
    try:
        record = client.get(slot.key)
    finally:
        client.close()
    assert record is not None, f"no claim of {user}'s key {key}"
    return decode_record(str(record)).command_id
