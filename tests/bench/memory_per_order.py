"""Redis bytes and keys per completed order, measured by hand (no assertions):

    .venv/bin/python -m tests.bench.memory_per_order [--orders 500] [--rate 40] [--ttl 60]
        [--hash-listpack-value N]

Starts a Redis for the write side and one for the read models, the web process, a command
worker, the process manager, the projector and the notifier (gateway latency 0), with
STATUS_TTL_SECONDS=--ttl and INTEGRATION_RETENTION_SECONDS=1, over 10 products. Then places
`--orders` one-line orders at `--rate` a second through the HTTP API (two customers, each
order with an Idempotency-Key, as the pages send it), waits until all are final and every
consumer is idle, and measures, against a snapshot taken before the orders:

  (a) live   bytes (MEMORY USAGE, every element) and keys per order, by key family, while
             the statuses and dedup records live;
  (b) aged   the same once every key that lives STATUS_TTL_SECONDS expired, the
             queues and integration streams were trimmed by their consumers, and the events
             streams were trimmed by hand up to what every group acknowledged (what the
             archive does once it has copied them out).

`--hash-listpack-value N` sets that Redis setting on both servers first (a hash whose values
are all shorter stays a compact listpack). Families are the README's "Redis keys" table; a key
it does not name is shown under its own name with ids and numbers masked.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import msgspec
from redis.asyncio import Redis

from app.adapters.embedded_redis import free_port
from app.kernel import keys
from app.kernel.stream_trim import trim_consumed
from tests.support.key_families import Family, families, family_of
from tests.support.polling import eventually
from tests.support.processes import ProcessGroup
from tests.support.redis_server import running_redis

PRODUCTS = [f"MEM-{n:02d}" for n in range(10)]
CUSTOMERS = ("alice", "bob")
CARD = "4242424242424242"
PARTITIONS = 4


Family3 = tuple[str, str, str]
"""(server, key family, its bound kind)"""


class Usage(msgspec.Struct):
    keys: Counter[Family3] = msgspec.field(default_factory=Counter)
    bytes: Counter[Family3] = msgspec.field(default_factory=Counter)
    used_memory: int = 0


def shape(key: str, table: list[Family]) -> tuple[str, str]:
    """(the key's family, its bound kind), or the key with ids and numbers masked and "?"."""
    try:
        found = family_of(key, table)
    except AssertionError:
        found = None
    if found is not None:
        return found.pattern, found.kind
    masked = re.sub(r"\{p\d+\}", "{pN}", key)
    masked = re.sub(r"[0-9a-f]{16,}", "<id>", masked)
    return re.sub(r"\d+", "<n>", masked), "?"


async def usage(servers: dict[str, Redis], table: list[Family]) -> Usage:
    found = Usage()
    for label, redis in servers.items():
        found.used_memory += int((await redis.info("memory"))["used_memory"])
        names = [name async for name in redis.scan_iter(count=1000)]
        for start in range(0, len(names), 500):
            chunk = names[start : start + 500]
            async with redis.pipeline(transaction=False) as pipe:
                for name in chunk:
                    pipe.memory_usage(name, samples=0)
                sizes = await pipe.execute()
            for name, size in zip(chunk, sizes, strict=True):
                pattern, kind = shape(name, table)
                family = (label, pattern, kind)
                found.keys[family] += 1
                found.bytes[family] += int(size or 0)
    return found


def per_order(before: Usage, after: Usage, orders: int, title: str) -> None:
    """Bytes and keys per order by family, and in all: the read models' data apart, and
    what is left beyond it by bound (data stays; capped stops growing once full; TTL and
    retention go)."""
    print(f"\n{title}: per completed order")
    print(f"  {'key family':<48} {'bound':<9} {'keys':>6} {'bytes':>8}")
    rows = []
    totals: dict[str, float] = defaultdict(float)
    keys_beyond = 0.0
    for family in set(before.bytes) | set(after.bytes):
        grew = (after.bytes[family] - before.bytes[family]) / orders
        more = (after.keys[family] - before.keys[family]) / orders
        if abs(grew) < 0.5 and abs(more) < 0.005:
            continue
        rows.append((family, more, grew))
        label, pattern, kind = family
        if pattern.startswith("rm:") and kind == "data":
            totals["read models (rm:, data)"] += grew
        else:
            totals[f"beyond the read models, {kind}"] += grew
            keys_beyond += more
    for (label, pattern, kind), more, grew in sorted(rows, key=lambda row: -row[2]):
        print(f"  {label + ' ' + pattern:<48} {kind:<9} {more:6.2f} {grew:8.1f}")
    for name, total in sorted(totals.items()):
        print(f"  {'total: ' + name:<65} {total:8.1f}")
    print(f"  keys beyond the read models: {keys_beyond:.2f}")
    print(f"  used_memory grew {(after.used_memory - before.used_memory) / orders:,.0f} B")


async def customers(base_url: str) -> list[httpx.AsyncClient]:
    clients = []
    for name in CUSTOMERS:
        client = httpx.AsyncClient(base_url=base_url, timeout=30)
        reply = await client.post(
            "/api/session", json={"username": name, "password": f"{name}-pass"}
        )
        reply.raise_for_status()
        client.headers["X-CSRF-Token"] = reply.json()["csrf_token"]
        clients.append(client)
    return clients


async def place(clients: list[httpx.AsyncClient], count: int, rate: float) -> list[str]:
    started = time.monotonic()

    async def one(n: int) -> str:
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        reply = await clients[n % len(clients)].post(
            "/api/commands",
            json={
                "type": "PlaceOrder",
                "lines": [{"sku": PRODUCTS[n % len(PRODUCTS)], "quantity": 1}],
                "card_number": CARD,
            },
            headers={"Idempotency-Key": f"mem-{started}-{n}"},
        )
        assert reply.status_code == 202, reply.text
        command_id: str = reply.json()["command_id"]
        return command_id

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def all_final(client: httpx.AsyncClient, command_ids: list[str]) -> None:
    async def unfinished() -> int:
        left = 0
        for command_id in command_ids:
            status = (await client.get(f"/api/commands/{command_id}")).json()["status"]
            left += status not in ("succeeded", "failed")
        return left

    await eventually(unfinished, until=lambda n: n == 0, timeout=600, interval=0.5)


async def idle(write: Redis) -> bool:
    """Every group of every stream has everything delivered and acknowledged."""
    for stream in [keys.events(p) for p in range(PARTITIONS)] + [
        f(p) for f in (keys.commands, keys.integration, keys.journal) for p in range(PARTITIONS)
    ]:
        if not await write.exists(stream):
            continue
        last = (await write.xinfo_stream(stream))["last-generated-id"]
        for group in await write.xinfo_groups(stream):
            if group["pending"] or group["last-delivered-id"] != last:
                return False
    return True


async def age(servers: dict[str, Redis], table: list[Family], ttl: int) -> None:
    """Until every key that lives `STATUS_TTL_SECONDS` (statuses, dedup records, the
    gateway's records) has expired, the consumed streams (queues, integration) were trimmed
    by their consumers, and the events streams by hand up to what every group acknowledged
    (what the archive does once it copied them out)."""
    status_ttl = {f.pattern for f in table if "STATUS_TTL_SECONDS" in f.settings}
    short = [
        (label, name)
        for label, redis in servers.items()
        async for name in redis.scan_iter(count=1000)
        if shape(name, table)[0] in status_ttl
    ]

    async def left() -> int:
        return sum([await servers[label].exists(name) for label, name in short])

    await eventually(left, until=lambda n: n == 0, timeout=ttl + 120, interval=1)
    write = servers["write"]
    for partition in range(PARTITIONS):
        await trim_consumed(write, keys.events(partition))

    async def untrimmed() -> int:
        streams = [f(p) for f in (keys.commands, keys.integration) for p in range(PARTITIONS)]
        return sum([await write.xlen(s) for s in streams])

    try:
        await eventually(untrimmed, until=lambda n: n == 0, timeout=30, interval=0.5)
    except AssertionError as exc:
        print(f"queues / integration streams not trimmed by their consumers: {exc}")


async def measure(args: argparse.Namespace, urls: dict[str, str], base_url: str) -> None:
    table = families()
    servers = {label: Redis.from_url(url, decode_responses=True) for label, url in urls.items()}
    write = servers["write"]
    clients: list[httpx.AsyncClient] = []
    try:
        if args.hash_listpack_value:
            for redis in servers.values():
                await redis.config_set("hash-max-listpack-value", args.hash_listpack_value)
        await eventually(lambda: _ready(base_url), timeout=60, message="web ready")
        clients = await customers(base_url)
        admin = httpx.AsyncClient(base_url=base_url, timeout=30)
        clients.append(admin)
        reply = await admin.post(
            "/api/session", json={"username": "admin", "password": "admin-pass"}
        )
        admin.headers["X-CSRF-Token"] = reply.json()["csrf_token"]
        for sku in PRODUCTS:
            created = await admin.post(
                "/api/commands",
                json={"type": "CreateProduct", "sku": sku, "name": sku, "price_cents": 500,
                      "initial_stock": 1_000_000},
            )  # fmt: skip
            assert created.status_code == 200, created.text
        warm = await place(clients[:2], 20, args.rate)  # connections, scripts, caches
        await all_final(admin, warm)
        await eventually(lambda: idle(write), timeout=120, message="pipeline idle")
        await age(servers, table, args.ttl)  # the warm-up's statuses must not age during (b)
        before = await usage(servers, table)

        command_ids = await place(clients[:2], args.orders, args.rate)
        await all_final(admin, command_ids)
        outcomes = Counter(
            [(await admin.get(f"/api/commands/{c}")).json()["status"] for c in command_ids]
        )
        await eventually(lambda: idle(write), timeout=120, message="pipeline idle")
        live = await usage(servers, table)
        print(f"{args.orders} orders at {args.rate:g}/s: {dict(outcomes)}")
        per_order(before, live, args.orders, f"(a) live (STATUS_TTL_SECONDS={args.ttl})")
        await age(servers, table, args.ttl)
        aged = await usage(servers, table)
        per_order(before, aged, args.orders, "(b) aged (TTL keys expired, streams trimmed)")
    finally:
        for client in clients:
            await client.aclose()
        for redis in servers.values():
            await redis.aclose()


async def _ready(base_url: str) -> bool:
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
            return (await client.get("/readyz")).status_code == 200
    except httpx.TransportError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--rate", type=float, default=40.0, help="orders a second")
    parser.add_argument(
        "--ttl", type=int, default=60, help="STATUS_TTL_SECONDS (over the run's length)"
    )
    parser.add_argument(
        "--hash-listpack-value",
        type=int,
        default=0,
        help="CONFIG SET hash-max-listpack-value on both servers first (0: the server's own)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="memory-bench-") as tmp:
        root = Path(tmp)
        with (
            running_redis(root / "write") as write,
            running_redis(root / "read") as read,
        ):
            port = free_port()
            group = ProcessGroup(
                root,
                {
                    "REDIS_URL": write.url,
                    "READ_REDIS_URL": read.url,
                    "PORT": str(port),
                    "APP_ENV": "development",
                    "PARTITIONS": str(PARTITIONS),
                    "PAYMENT_LATENCY_MS": "0",
                    "PAYMENT_FAILURE_RATE": "0",
                    "STATUS_TTL_SECONDS": str(args.ttl),
                    "INTEGRATION_RETENTION_SECONDS": "1",
                    "LOG_LEVEL": "WARNING",
                },
            )
            try:
                group.start("web", "app.web.serve")
                for kind in ("commands", "process", "projector", "notifier"):
                    group.start(kind, f"workers.{kind}")
                asyncio.run(
                    measure(
                        args, {"write": write.url, "read": read.url}, f"http://127.0.0.1:{port}"
                    )
                )
            except BaseException:
                print(group.logs())
                raise
            finally:
                group.stop_all()


if __name__ == "__main__":
    main()
