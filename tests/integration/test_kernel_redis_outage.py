"""Redis dies under load: submit raises ConnectionError, and after a restart from the
append-only file nothing is half-done."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import msgspec
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from app.domain.products import CreateProduct, RestockProduct
from app.kernel import keys
from app.kernel.intake import Reply
from app.kernel.messages import CommandEnvelope, StoredEvent
from app.kernel.partitions import partition_of_command
from app.services import Services, build_services
from tests.integration.conftest import ADMIN, make_settings
from tests.support.kernel_catalog import product_record
from tests.support.polling import eventually
from tests.support.redis_server import running_redis

SKU = "MUG-DOWN"
INITIAL = 10
_envelope = msgspec.json.Decoder(CommandEnvelope)
_stored = msgspec.json.Decoder(StoredEvent)


async def _client(
    services: Services, lane: int, replies: list[tuple[str, Reply]], errors: list[BaseException]
) -> None:
    """Alternate sync and async restocks until Redis stops answering."""
    n = 0
    while True:
        prefer_async = (lane + n) % 2 == 0
        n += 1
        try:
            reply = await services.intake.submit(
                RestockProduct(SKU, 1), ADMIN, prefer_async=prefer_async
            )
        except RedisError as exc:
            errors.append(exc)
            return
        replies.append(("async" if prefer_async else "sync", reply))


async def _status_ids(redis: Redis, partition: int) -> dict[str, dict[str, str]]:
    found = {}
    prefix = keys.command_status(partition, "")
    async for key in redis.scan_iter(match=f"{keys.command_status(partition, '*')}", count=1000):
        if key.endswith(":steps"):
            continue
        found[key[len(prefix) :]] = await redis.hgetall(key)
    return found


async def _answers(services: Services) -> bool:
    try:
        return bool(await services.write.ping())
    except RedisError:  # still loading its append-only file
        return False


async def _check_nothing_half_done(services: Services, replies: list[tuple[str, Reply]]) -> None:
    redis = services.write
    partitions = services.settings.partitions
    restock_events: Counter[str] = Counter()
    for partition in range(partitions):
        queued = {
            _envelope.decode(fields["c"]).command_id
            for _, fields in await redis.xrange(keys.commands(partition))
        }
        statuses = await _status_ids(redis, partition)
        for command_id in queued:  # every queue entry has its `accepted` status
            assert statuses.get(command_id, {}).get("status") == "accepted", command_id
        journal = Counter(
            msgspec.json.decode(fields["e"])["command_id"]
            for _, fields in await redis.xrange(keys.journal(partition))
        )
        for command_id, record in statuses.items():
            dedup = await redis.hgetall(keys.dedup(partition, command_id))
            if record.get("status") == "accepted":  # an async command: queued, not run
                assert command_id in queued and not dedup, command_id
            else:  # a sync command: status, dedup record and journal entry together
                assert record["status"] == dedup["status"] == "succeeded", command_id
                assert journal[command_id] == 1, command_id
        for _, fields in await redis.xrange(keys.events(partition)):
            event = _stored.decode(fields["e"])
            if event.type == "ProductRestocked":
                restock_events[event.command_id] += 1
                assert statuses[event.command_id]["status"] == "succeeded"
    assert set(restock_events.values()) <= {1}
    version, product = await product_record(services, SKU)
    assert product is not None
    assert version == 1 + len(restock_events)
    assert product.on_hand == INITIAL + len(restock_events)
    assert {mode for mode, _ in replies} == {"sync", "async"}
    # Every command acknowledged before the kill survived it (the server fsyncs its
    # append-only file before it answers: `appendfsync always`).
    for mode, reply in replies:
        if mode == "sync":
            assert restock_events[reply.command_id] == 1, reply
        else:
            partition = partition_of_command(reply.command_id, partitions)
            assert partition is not None
            status = await redis.hget(keys.command_status(partition, reply.command_id), "status")
            assert status == "accepted", reply


async def test_submit_raises_connection_error_while_redis_is_down_and_nothing_is_half_done(
    tmp_path: Path,
) -> None:
    """Kill Redis while eight clients send sync and async restocks: submit raises a
    ConnectionError; restarted from its append-only file, every queue entry has its status
    and vice versa, and every commit is whole (state, event, status, dedup, journal)."""
    with running_redis(tmp_path / "redis", appendonly=True) as server:
        settings = make_settings(server.url)
        services = build_services(settings)
        try:
            created = await services.intake.submit(CreateProduct(SKU, "Mug", 100, INITIAL), ADMIN)
            assert created.status_code == 200
            replies: list[tuple[str, Reply]] = []
            errors: list[BaseException] = []
            clients = [
                asyncio.create_task(_client(services, lane, replies, errors)) for lane in range(8)
            ]

            async def answered() -> int:
                return len(replies)

            await eventually(answered, until=lambda n: n >= 200, message="load under way")
            server.kill()
            await asyncio.wait_for(asyncio.gather(*clients), timeout=60)
            assert len(errors) == 8

            with pytest.raises(RedisConnectionError):
                await services.intake.submit(RestockProduct(SKU, 1), ADMIN)
            with pytest.raises(RedisConnectionError):
                await services.intake.submit(RestockProduct(SKU, 1), ADMIN, prefer_async=True)
        finally:
            await services.close()

        server.restart()
        services = build_services(settings)
        try:
            await eventually(lambda: _answers(services), message="redis back", timeout=30)
            await _check_nothing_half_done(services, replies)
        finally:
            await services.close()
