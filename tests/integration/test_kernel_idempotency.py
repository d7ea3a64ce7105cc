"""Idempotency-Key: a replay answers the first reply again and the command runs once."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from app.config import Settings
from app.domain.catalog_import import ImportCatalog, ProductRow
from app.domain.products import CreateProduct, RestockProduct
from app.kernel.idempotency import IdempotencyRecord, IdempotencyStore
from app.kernel.intake import IdempotencyKeyReused, Reply
from app.kernel.messages import Actor
from app.services import Services
from tests.integration.conftest import ADMIN, running_workers
from tests.support.kernel_catalog import (
    event_counts,
    final_status,
    product_record,
    queued_commands,
    status_of,
)

SKU = "MUG-IDEM"
OTHER_ADMIN = Actor("carol", frozenset({"admin"}))


async def _create(services: Services, stock: int = 10) -> None:
    reply = await services.intake.submit(CreateProduct(SKU, "Mug", 1200, stock), ADMIN)
    assert reply.status_code == 200, reply


async def _restocks(services: Services) -> int:
    counts = await event_counts(services.write, services.settings.partitions)
    return counts[("ProductRestocked", SKU)]


async def test_a_replayed_key_returns_the_same_reply_and_runs_the_command_once(
    services: Services,
) -> None:
    """Same key, same body, same user, sent again later: the first Reply, one restock."""
    await _create(services)
    first = await services.intake.submit(RestockProduct(SKU, 4), ADMIN, idempotency_key="k-1")
    again = await services.intake.submit(RestockProduct(SKU, 4), ADMIN, idempotency_key="k-1")

    assert first.status_code == 200 and first.status == "succeeded"
    assert again == first
    assert await _restocks(services) == 1
    version, product = await product_record(services, SKU)
    assert version == 2 and product is not None and product.on_hand == 14


async def test_concurrent_replays_of_one_key_run_the_command_once(services: Services) -> None:
    """Ten copies of one request at the same moment: one restock, ten identical replies."""
    await _create(services)
    replies = await asyncio.gather(
        *(
            services.intake.submit(RestockProduct(SKU, 4), ADMIN, idempotency_key="burst")
            for _ in range(10)
        )
    )

    assert {r.status_code for r in replies} == {200}
    assert len(set(replies)) == 1
    assert await _restocks(services) == 1
    _, product = await product_record(services, SKU)
    assert product is not None and product.on_hand == 14


async def test_a_replay_of_a_failed_command_returns_the_same_problem(services: Services) -> None:
    """A command that failed a rule fails the same way on replay, without running again."""
    first = await services.intake.submit(RestockProduct("NOPE-9", 1), ADMIN, idempotency_key="f")
    again = await services.intake.submit(RestockProduct("NOPE-9", 1), ADMIN, idempotency_key="f")

    assert first.status_code == 409 and first.error.code == "unknown_product"
    assert again == first


async def test_the_same_key_with_another_body_is_refused_as_reused(services: Services) -> None:
    """Same key, different body: 409 idempotency_key_reused, and nothing more runs."""
    await _create(services)
    await services.intake.submit(RestockProduct(SKU, 4), ADMIN, idempotency_key="k-2")

    with pytest.raises(IdempotencyKeyReused) as raised:
        await services.intake.submit(RestockProduct(SKU, 5), ADMIN, idempotency_key="k-2")

    problem = raised.value.to_problem()
    assert (problem.status, problem.code) == (409, "idempotency_key_reused")
    assert await _restocks(services) == 1
    _, product = await product_record(services, SKU)
    assert product is not None and product.on_hand == 14


async def test_the_same_key_from_another_user_is_independent(services: Services) -> None:
    """Keys are per user: another admin's identical request with that key runs on its own."""
    await _create(services)
    mine = await services.intake.submit(RestockProduct(SKU, 4), ADMIN, idempotency_key="k-3")
    theirs = await services.intake.submit(
        RestockProduct(SKU, 4), OTHER_ADMIN, idempotency_key="k-3"
    )

    assert mine.status_code == theirs.status_code == 200
    assert mine.command_id != theirs.command_id
    assert await _restocks(services) == 2
    _, product = await product_record(services, SKU)
    assert product is not None and product.on_hand == 18


async def test_an_async_replay_returns_202_with_the_same_id_and_enqueues_nothing(
    services: Services, settings: Settings
) -> None:
    """respond-async replays: 202, the first command id, the commands streams unchanged."""
    await _create(services)
    partitions = settings.partitions
    first = await services.intake.submit(
        RestockProduct(SKU, 4), ADMIN, idempotency_key="a-1", prefer_async=True
    )
    queued = await queued_commands(services.write, partitions)
    again = await services.intake.submit(
        RestockProduct(SKU, 4), ADMIN, idempotency_key="a-1", prefer_async=True
    )

    assert first.status_code == 202 and first.location == f"/api/commands/{first.command_id}"
    assert again == first
    assert queued == 1
    assert await queued_commands(services.write, partitions) == queued
    async with running_workers(settings, ["commands"]):
        status = await final_status(services, first.command_id)
    assert status.status == "succeeded"
    assert await _restocks(services) == 1


async def test_a_replayed_import_returns_the_first_command_id(services: Services) -> None:
    """ImportCatalog (always async) replayed with its key: 202, same id, one queue entry."""
    command = ImportCatalog([ProductRow("IMP-1", "One", 100), ProductRow("IMP-2", "Two", 200)])
    first = await services.intake.submit(command, ADMIN, idempotency_key="imp")
    again = await services.intake.submit(command, ADMIN, idempotency_key="imp")

    assert first.status_code == 202 and again == first
    assert await queued_commands(services.write, services.settings.partitions) == 1


async def _claim_without_running(
    services: Services, settings: Settings, command: msgspec.Struct, key: str, mode: str
) -> str:
    """What a web process that crashed right after claiming the key leaves behind."""
    tag = type(command).__struct_config__.tag
    assert isinstance(tag, str)
    store = IdempotencyStore(services.write, settings.secret_key, settings.partitions)
    envelope = services.bus.envelope(command, ADMIN)
    record = IdempotencyRecord(
        store.fingerprint(tag, msgspec.json.encode(command)),
        envelope.command_id,
        envelope.aggregate_id,
        mode,
    )
    assert await store.claim(store.slot("admin", key), record) is None
    return envelope.command_id


async def test_a_replay_after_a_crash_between_claim_and_commit_runs_under_the_first_id(
    services: Services, settings: Settings
) -> None:
    """The key was claimed but nothing was accepted: the replay runs it, under the first id."""
    await _create(services)
    claimed = await _claim_without_running(
        services, settings, RestockProduct(SKU, 4), "crash-1", "sync"
    )
    assert await status_of(services, claimed) is None

    reply = await services.intake.submit(RestockProduct(SKU, 4), ADMIN, idempotency_key="crash-1")
    again = await services.intake.submit(RestockProduct(SKU, 4), ADMIN, idempotency_key="crash-1")

    assert reply == Reply(200, claimed, "succeeded", position=reply.position)
    assert reply.position is not None
    assert again == reply
    status = await status_of(services, claimed)
    assert status is not None and status.status == "succeeded"
    assert await _restocks(services) == 1
    _, product = await product_record(services, SKU)
    assert product is not None and product.on_hand == 14


async def test_an_async_replay_after_a_crash_enqueues_the_first_id_once(
    services: Services, settings: Settings
) -> None:
    """Claimed in async mode, never enqueued: the replay enqueues the first id, once."""
    await _create(services)
    claimed = await _claim_without_running(
        services, settings, RestockProduct(SKU, 4), "crash-2", "async"
    )

    reply = await services.intake.submit(
        RestockProduct(SKU, 4), ADMIN, idempotency_key="crash-2", prefer_async=True
    )
    again = await services.intake.submit(
        RestockProduct(SKU, 4), ADMIN, idempotency_key="crash-2", prefer_async=True
    )

    assert reply.status_code == 202 and reply.command_id == claimed
    assert again == reply
    assert await queued_commands(services.write, settings.partitions) == 1
    async with running_workers(settings, ["commands"]):
        status = await final_status(services, claimed)
    assert status.status == "succeeded"
    assert await _restocks(services) == 1
