"""Order and fulfilment test helpers: place orders, read outcomes, wait for the pipeline.

Everything here reads what a test must check from where it really is: command statuses from
the status store, aggregates from the write model (through the bus), events from the
partitions' streams, money from the simulated gateway's ledger. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any, cast

import msgspec
from redis.asyncio import Redis

from app.adapters.payment_gateway import SimulatedGateway, ledger_record
from app.aggregates import ORDER, PRODUCT
from app.config import Settings
from app.domain.orders import LineRequest, Order, PlaceOrderRequest
from app.domain.products import CreateProduct, Product
from app.kernel import keys
from app.kernel.command_status import FINAL, CommandStatus
from app.kernel.command_worker import GROUP as COMMANDS_GROUP
from app.kernel.consumer import PartitionedConsumer
from app.kernel.leases import Leases
from app.kernel.messages import Actor, StoredEvent
from app.kernel.partitions import partition_of_command
from app.kernel.pass_groups import PASS_GROUP_PREFIX, pass_group
from app.kernel.positions import parse_stream_id
from app.kernel.projection import group_name
from app.kernel.redis_types import text, text_dict, text_list
from app.processes.fulfilment import GROUP as FULFILMENT_GROUP
from app.processes.fulfilment import Fulfilment
from app.processes.fulfilment_sweep import sweeping
from app.projections.registry import NOTIFIER, PROJECTOR, build
from app.services import Services, build_services
from tests.support.polling import eventually

APPROVED_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
CUSTOMER = frozenset({"customer"})
WORKER_KINDS = ("commands", "projector", "process", "notifier")

_stored = msgspec.json.Decoder(StoredEvent)

FAIL, ANSWER = 0.1, 0.9
"""Scripted dice of a gateway with PAYMENT_FAILURE_RATE=0.5: this call fails / answers."""
AFTER_RECORDING, BEFORE_RECORDING = 0.1, 0.9
"""... and a failed call failed after recording the work (answer lost) / before doing it."""

StreamKey = Callable[[int], str]
Groups = Sequence[tuple[StreamKey, str]]


def pipeline_groups(settings: Settings, kinds: Iterable[str] = WORKER_KINDS) -> Groups:
    """(stream of a partition, consumer group) of every consumer the given worker kinds run."""
    wanted = set(kinds)
    groups: list[tuple[StreamKey, str]] = []
    if "commands" in wanted:
        groups.append((keys.commands, COMMANDS_GROUP))
    if "process" in wanted:
        groups.append((keys.events, FULFILMENT_GROUP))
    seen: set[tuple[str, str]] = set()
    for projection in build(PROJECTOR if "projector" in wanted else (), settings):
        group = pass_group(projection.stream(0))  # one pass per stream for every read model
        if (projection.stream(0), group) not in seen:
            seen.add((projection.stream(0), group))
            groups.append((projection.stream, group))
    for projection in build(NOTIFIER if "notifier" in wanted else (), settings):
        groups.append((projection.stream, group_name(projection.name)))
    return groups


def customer(name: str) -> Actor:
    return Actor(name, CUSTOMER)


def luhn_complete(prefix: str) -> str:
    """`prefix` plus the check digit that makes it Luhn-valid."""
    total = 0
    for index, char in enumerate(reversed(prefix)):
        digit = int(char)
        if index % 2 == 0:  # these digits are doubled once the check digit is appended
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return prefix + str((10 - total % 10) % 10)


def order_lines(quantities: Mapping[str, int]) -> list[LineRequest]:
    return [LineRequest(sku, quantity) for sku, quantity in quantities.items()]


async def create_products(
    services: Services, admin: Actor, stock: Mapping[str, int], *, price_cents: int = 1000
) -> None:
    for sku, on_hand in stock.items():
        reply = await services.intake.submit(
            CreateProduct(sku, f"Product {sku}", price_cents, on_hand), admin
        )
        assert reply.status_code == 200, reply


async def place_order(
    services: Services, actor: Actor, quantities: Mapping[str, int], card: str = APPROVED_CARD
) -> str:
    """Submit PlaceOrder as a client would (the wire form, with the card number): its id."""
    reply = await services.intake.submit(PlaceOrderRequest(order_lines(quantities), card), actor)
    assert reply.status_code == 202 and reply.status == "accepted", reply
    return reply.command_id


def command_partition(services: Services, command_id: str) -> int:
    partition = partition_of_command(command_id, services.settings.partitions)
    assert partition is not None, command_id
    return partition


async def command_status(services: Services, command_id: str) -> CommandStatus:
    stored = await services.statuses.get(command_partition(services, command_id), command_id)
    assert stored is not None, f"no status for {command_id}"
    return stored.view


async def wait_final(services: Services, command_id: str, within: float = 30.0) -> CommandStatus:
    return await eventually(
        lambda: command_status(services, command_id),
        until=lambda view: view.status in FINAL,
        timeout=within,
        interval=0.05,
        message=f"command {command_id} final",
    )


async def statuses(services: Services, command_ids: Sequence[str]) -> dict[str, str]:
    """The status word of many commands, in one round trip."""
    async with services.write.pipeline(transaction=False) as pipe:
        for command_id in command_ids:
            pipe.hget(
                keys.command_status(command_partition(services, command_id), command_id), "status"
            )
        found = await pipe.execute()
    return {cid: status or "" for cid, status in zip(command_ids, found, strict=True)}


async def wait_all_final(
    services: Services, command_ids: Sequence[str], within: float = 120.0
) -> dict[str, str]:
    async def unfinished() -> list[str]:
        current = await statuses(services, command_ids)
        return [cid for cid, status in current.items() if status not in FINAL]

    await eventually(
        unfinished,
        until=lambda left: not left,
        timeout=within,
        interval=0.2,
        message=f"all {len(command_ids)} commands final",
    )
    return await statuses(services, command_ids)


async def stream_items(redis: Redis, stream: str) -> list[tuple[str, dict[str, str]]]:
    """Every entry of a stream: (entry id, fields)."""
    return cast(list[tuple[str, dict[str, str]]], await redis.xrange(stream))


def order_of_command(command_id: str) -> str:
    """A PlaceOrder's order id: its command id derives from it (`<order id>-<partition>`)."""
    return command_id.rpartition("-")[0]


async def order_ids(services: Services) -> dict[str, str]:
    """PlaceOrder command id → order id, for every PlaceOrder accepted (from their statuses:
    a queue's entries are trimmed once they ran)."""
    found: dict[str, str] = {}
    for partition in range(services.settings.partitions):
        prefix = keys.command_status(partition, "")
        names = [text(n) async for n in services.write.scan_iter(match=f"{prefix}*", count=1000)]
        for name in names:
            command_id = name.removeprefix(prefix)
            if ":" in command_id:  # its steps
                continue
            if text(await services.write.hget(name, "type") or "") == "PlaceOrder":
                found[command_id] = order_of_command(command_id)
    return found


async def order_id_of(services: Services, command_id: str) -> str:
    assert (await command_status(services, command_id)).type == "PlaceOrder", command_id
    return order_of_command(command_id)


async def load_order(services: Services, order_id: str) -> Order:
    order = await services.bus.load(ORDER, order_id)
    assert order is not None, f"no order {order_id} in the write model"
    return order


async def load_product(services: Services, sku: str) -> Product:
    product = await services.bus.load(PRODUCT, sku)
    assert product is not None, f"no product {sku} in the write model"
    return product


async def wait_order_status(
    services: Services, order_id: str, wanted: Iterable[str], within: float = 30.0
) -> Order:
    targets = frozenset(wanted)

    async def probe() -> Order | None:
        return await services.bus.load(ORDER, order_id)

    found = await eventually(
        probe,
        until=lambda o: o is not None and o.status in targets,
        timeout=within,
        interval=0.02,
        message=f"order {order_id} in {sorted(targets)}",
    )
    assert found is not None
    return found


async def domain_events(redis: Redis, partitions: int) -> list[StoredEvent]:
    """Every domain event of every partition's events stream."""
    found: list[StoredEvent] = []
    for partition in range(partitions):
        for _entry_id, fields in await stream_items(redis, keys.events(partition)):
            found.append(_stored.decode(fields["e"]))
    return found


def payload(event: StoredEvent) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.json.decode(event.data)
    return data


async def integration_events(redis: Redis, partitions: int) -> list[dict[str, Any]]:
    """Every integration event, as the public JSON document a consumer receives."""
    found: list[dict[str, Any]] = []
    for partition in range(partitions):
        for _entry_id, fields in await stream_items(redis, keys.integration(partition)):
            found.append(msgspec.json.decode(fields["e"]))
    return found


async def _ledger(redis: Redis, field: str) -> dict[str, str]:
    """The gateway's ledger records holding `field`: idempotency key → its value."""
    prefix = ledger_record("")
    names = [text(name) async for name in redis.scan_iter(match=f"{prefix}*", count=1000)]
    found = {}
    for name in names:
        value = await redis.hget(name, field)
        if value is not None:
            found[name.removeprefix(prefix)] = text(value)
    return found


async def captures(redis: Redis) -> dict[str, int]:
    """The gateway's ledger: idempotency key → number of times money was taken."""
    return {key: int(count) for key, count in (await _ledger(redis, "captures")).items()}


async def refunds(redis: Redis) -> dict[str, str]:
    """The gateway's refunds: refund idempotency key → the charge refunded."""
    return await _ledger(redis, "refund")


async def _group_lag(redis: Redis, stream: str, name: str) -> list[str]:
    if not await redis.exists(stream):
        return [f"{stream}: no stream"]
    last = (await redis.xinfo_stream(stream))["last-generated-id"]
    group = next((g for g in await redis.xinfo_groups(stream) if g["name"] == name), None)
    if group is None:
        return [f"{stream}/{name}: no group"]
    if group["pending"] or group["last-delivered-id"] != last:
        return [f"{stream}/{name}: pending {group['pending']}, lag {group.get('lag')}"]
    return []


async def busy_consumers(redis: Redis, partitions: int, groups: Groups) -> list[str]:
    """Consumer groups with unread or unacknowledged entries (empty: the pipeline is idle)."""
    busy: list[str] = []
    for stream_key, group in groups:
        for partition in range(partitions):
            busy += await _group_lag(redis, stream_key(partition), group)
    return busy


async def read_models_behind(services: Services, groups: Groups) -> list[str]:
    """Read models of a projector pass among `groups` whose checkpoint (where they have one)
    is not yet where the pass is: left out of its batches (paused, new, swapped in) and not
    caught up yet."""
    behind: list[str] = []
    for stream_key, group in groups:
        if not group.startswith(PASS_GROUP_PREFIX):
            continue
        names = [
            p.name for p in build(PROJECTOR, services.settings) if p.stream(0) == stream_key(0)
        ]
        for partition in range(services.settings.partitions):
            stream = stream_key(partition)
            found = [g for g in await services.write.xinfo_groups(stream) if g["name"] == group]
            if not found:
                continue
            at = parse_stream_id(str(found[0]["last-delivered-id"]))
            checkpoints = await services.read.mget([keys.checkpoint(n, partition) for n in names])
            behind += [
                f"{name} partition {partition}: at {text(checkpoint)}"
                for name, checkpoint in zip(names, checkpoints, strict=True)
                if checkpoint is not None and parse_stream_id(text(checkpoint)) < at
            ]
    return behind


async def wait_idle(services: Services, groups: Groups, within: float = 60.0) -> None:
    """Until every consumer group has read and acknowledged everything: nothing in flight,
    and every read model of a projector pass where the pass is.

    An entry is pending from its delivery until its handler finished, and every reaction
    is appended before the entry that caused it is acked, so "nothing unread, nothing
    pending" twice in a row means the pipeline has settled.
    """
    deadline = time.monotonic() + within
    quiet = 0
    while quiet < 2:
        busy = await busy_consumers(services.write, services.settings.partitions, groups)
        busy = busy or await read_models_behind(services, groups)
        quiet = quiet + 1 if not busy else 0
        if busy and time.monotonic() > deadline:
            raise AssertionError(f"pipeline not idle in {within}s: {busy[:8]}")
        await asyncio.sleep(0.05)


async def scan_values(redis: Redis) -> dict[str, list[str]]:
    """Every key of the server with everything it holds as text, whatever its type."""
    found: dict[str, list[str]] = {}
    async for raw_key in redis.scan_iter(count=1000):
        key = text(raw_key)
        kind = text(await redis.type(key))
        values: list[str] = [key]
        if kind == "string":
            values.append(text(await redis.get(key)))
        elif kind == "hash":
            for field, value in text_dict(await redis.hgetall(key)).items():
                values += [field, value]
        elif kind == "list":
            values += text_list(await redis.lrange(key, 0, -1))
        elif kind == "set":
            values += text_list(list(await redis.smembers(key)))
        elif kind == "zset":
            scored = cast(list[tuple[str, float]], await redis.zrange(key, 0, -1, withscores=True))
            values += [f"{member} {score}" for member, score in scored]
        elif kind == "stream":
            for entry_id, fields in await stream_items(redis, key):
                values.append(entry_id)
                for field, value in fields.items():
                    values += [field, value]
            for group in await redis.xinfo_groups(key):
                values.append(str(group["name"]))
        else:
            raise AssertionError(f"{key}: unexpected type {kind}")
        found[key] = values
    return found


class ScriptedRandom(random.Random):
    """A gateway's dice, loaded: `random()` answers from `script`, then `after` forever.

    The simulated gateway rolls once per call (`< PAYMENT_FAILURE_RATE`: the call fails) and,
    for a failed call, once more (`< 0.5`: the work was recorded and the answer lost, else
    refused before recording). With a failure rate of 0.5 the names below read as such.
    """

    def __init__(self, script: Sequence[float], after: float) -> None:
        super().__init__(0)
        self._script = list(script)
        self._after = after

    def random(self) -> float:
        return self._script.pop(0) if self._script else self._after


async def _only_member() -> int:
    return 1


@contextlib.asynccontextmanager
async def running_fulfilment(
    settings: Settings, rng: random.Random, *, owner: str = "scripted"
) -> AsyncIterator[SimulatedGateway]:
    """The real fulfilment loop (with its sweeper), its gateway rolling `rng` (so its failures
    are scripted) and behind the gate if PAYMENT_GATE says so."""
    services = build_services(settings)
    gateway = SimulatedGateway(
        services.write,
        settings.secret_key,
        latency_ms=settings.payment_latency_ms,
        failure_rate=settings.payment_failure_rate,
        timeout_ms=settings.payment_timeout_ms,
        retries=settings.payment_retries,
        ttl_seconds=settings.status_ttl_seconds,
        rng=rng,
        gated=settings.payment_gate,
    )
    fulfilment = Fulfilment(services.bus, gateway)
    consumer = PartitionedConsumer(
        services.write,
        [sweeping(services.bus, fulfilment, services.running, settings.sweep_after_seconds)],
        settings.partitions,
        Leases(services.write, f"{owner}-process"),
        _only_member,
        block_ms=200,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop, tick=0.2))
    try:
        yield gateway
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), timeout=20)
        await services.close()
