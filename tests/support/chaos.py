"""Chaos tests' machinery: a stack with two of every process, shoppers that keep at it through
crashes, and the checks that nothing was lost or done twice.

The stack runs on one Redis with its append-only file fsynced on every write, with short
leases, heartbeats and stall bounds (so takeovers take seconds), and the payment gateway
behind a gate the test opens (orders wait mid-charge while things are killed).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from redis import Redis as SyncRedis

from app.adapters.embedded_redis import free_port
from app.adapters.redis_client import cluster_url
from app.config import Settings, load_settings
from app.kernel import keys
from app.kernel.rebuild import ShadowRebuild
from app.projections.registry import REBUILDABLE, rebuildable
from app.queries import notifications
from app.services import Services
from tests.support.api_client import (
    COOKIE,
    PASSWORDS,
    WORKER_MODULES,
    base_env,
    start_web,
    stop_together,
)
from tests.support.orders_helpers import (
    captures,
    command_partition,
    domain_events,
    integration_events,
    load_order,
    load_product,
    order_ids,
    statuses,
)
from tests.support.processes import Proc, ProcessGroup
from tests.support.redis_server import RedisServer, running_redis

PARTITIONS = 4
CHAOS_ENV = {
    "PARTITIONS": str(PARTITIONS),
    "LEASE_MS": "1500",
    "HEARTBEAT_SECONDS": "0.5",
    "STALL_SECONDS": "3",
    "GIVE_UP_SECONDS": "10",
    "PAYMENT_GATE": "1",
    "AUDIT_SECONDS": "0",
    "LOG_LEVEL": "WARNING",
}
KINDS = tuple(WORKER_MODULES)
GATE = keys.external("gateway", "gate")
CUSTOMERS = ("alice", "bob")


@dataclass
class Shopper:
    """A signed-in user's session (valid on every web process: sessions live in Redis)."""

    username: str
    token: str
    csrf: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Cookie": f"{COOKIE}={self.token}", "X-CSRF-Token": self.csrf}


@dataclass
class Sent:
    kind: str
    command_id: str
    body: dict[str, Any]


@dataclass
class ChaosStack:
    group: ProcessGroup
    env: dict[str, str]
    """REDIS_URL (and READ_REDIS_URL) and the chaos settings every process runs with."""
    redis: RedisServer | None = None
    """The one Redis server, when the stack is not on a Cluster."""
    webs: list[tuple[str, Proc]] = field(default_factory=list)
    workers: dict[str, list[Proc]] = field(default_factory=dict)
    shoppers: dict[str, Shopper] = field(default_factory=dict)
    copies: int = 2
    """Live processes of each kind (web included) that `heal` keeps."""

    @property
    def settings(self) -> Settings:
        return load_settings({**self.env, "APP_ENV": "test"})

    def write_client(self) -> SyncRedis:
        """A plain client of the write side (one server, or the Cluster)."""
        url, cluster = cluster_url(self.env["REDIS_URL"])
        if cluster:
            return redis.RedisCluster.from_url(url)
        return redis.Redis.from_url(url)

    def live_webs(self) -> list[str]:
        return [url for url, proc in self.webs if proc.alive()]

    def heal(self) -> None:
        """Two (`copies`) live web processes and of every worker kind (replacing the
        killed): between tests, never while one recovers."""
        self.webs = [(url, proc) for url, proc in self.webs if proc.alive()]
        while len(self.webs) < self.copies:
            port = free_port()
            self.webs.append((f"http://127.0.0.1:{port}", start_web(self.group, port)))
        for kind in KINDS:
            alive = [proc for proc in self.workers.get(kind, []) if proc.alive()]
            while len(alive) < self.copies:
                alive.append(self.group.start(kind, WORKER_MODULES[kind]))
            self.workers[kind] = alive
        for username in ("admin", *CUSTOMERS):
            if username not in self.shoppers:
                self.shoppers[username] = _login(self.webs[0][0], username)

    def kill(self, kind: str) -> None:
        """SIGKILL one process of `kind` (a web, a worker kind, or "redis")."""
        if kind == "redis":
            assert self.redis is not None
            self.redis.kill()
        elif kind == "web":
            self.webs[0][1].kill()
        else:
            self.workers[kind][0].kill()


def _login(base_url: str, username: str) -> Shopper:
    reply = httpx.post(
        f"{base_url}/api/session",
        json={"username": username, "password": PASSWORDS[username]},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    return Shopper(username, reply.cookies[COOKIE], reply.json()["csrf_token"])


@contextmanager
def running_chaos_stack(directory: Path) -> Iterator[ChaosStack]:
    (directory / "logs").mkdir(parents=True, exist_ok=True)
    with running_redis(directory / "redis", appendonly=True) as server:
        env = base_env(server.url, **CHAOS_ENV)
        stack = ChaosStack(ProcessGroup(directory / "logs", env), env, server)
        try:
            stack.heal()
            yield stack
        finally:
            stop_together(stack.group)


# --- clients that keep at it ------------------------------------------------------------------


async def send(
    stack: ChaosStack,
    http: httpx.AsyncClient,
    who: str,
    body: dict[str, Any],
    *,
    within: float = 60.0,
) -> str:
    """POST a command until some web process accepts it: one Idempotency-Key throughout, so
    a request that died with its web process (or Redis) is answered, not run, again."""
    key = uuid.uuid4().hex
    headers = {**stack.shoppers[who].headers, "Idempotency-Key": key, "Prefer": "respond-async"}
    deadline = time.monotonic() + within
    attempt = 0
    while True:
        webs = stack.live_webs() or [url for url, _ in stack.webs]
        url = webs[attempt % len(webs)]
        attempt += 1
        try:
            reply = await http.post(f"{url}/api/commands", json=body, headers=headers)
            if reply.status_code in (200, 202):
                command_id: str = reply.json()["command_id"]
                return command_id
            assert reply.status_code >= 500, (reply.status_code, reply.text)
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{body['type']} never accepted"
        await asyncio.sleep(min(0.5, 0.05 * attempt))


async def burst(
    stack: ChaosStack,
    skus: list[str],
    sent: list[Sent],
    *,
    orders: int,
    restocks: int,
    lanes: int = 8,
) -> None:
    """Orders (of one or two lines) and restocks, mixed, `lanes` at a time; each accepted
    command is appended to `sent` as soon as it is."""
    rng = random.Random(len(skus) + orders)
    jobs: list[tuple[str, str, dict[str, Any]]] = []
    for n in range(orders):
        lines = rng.sample(skus, rng.choice((1, 2)))
        body = {
            "type": "PlaceOrder",
            "lines": [{"sku": sku, "quantity": rng.randint(1, 2)} for sku in lines],
            "card_number": "4242424242424242",
        }
        jobs.append(("order", CUSTOMERS[n % 2], body))
    for _ in range(restocks):
        body = {"type": "RestockProduct", "sku": rng.choice(skus), "quantity": rng.randint(1, 5)}
        jobs.append(("restock", "admin", body))
    rng.shuffle(jobs)
    slots = asyncio.Semaphore(lanes)
    async with httpx.AsyncClient(timeout=10) as http:

        async def one(kind: str, who: str, body: dict[str, Any]) -> None:
            async with slots:
                sent.append(Sent(kind, await send(stack, http, who, body), body))

        await asyncio.gather(*(one(*job) for job in jobs))


def set_gate(stack: ChaosStack, state: str, within: float = 30.0) -> None:
    """Close or open the payment gateway's gate (waiting for Redis if it is coming back)."""
    deadline = time.monotonic() + within
    while True:
        client = stack.write_client()
        try:
            client.set(GATE, state)
            return
        except redis.RedisError:
            assert time.monotonic() < deadline, "redis did not come back"
            time.sleep(0.05)
        finally:
            client.close()


async def _why(services: Services, command_ids: list[str]) -> list[dict[str, str]]:
    """The stored status of some commands (their error codes and messages)."""
    async with services.write.pipeline(transaction=False) as pipe:
        for command_id in command_ids:
            pipe.hgetall(keys.command_status(command_partition(services, command_id), command_id))
        found: list[dict[str, str]] = await pipe.execute()
    return found


# --- what must hold after any crash ---------------------------------------------------------


async def assert_nothing_lost_or_doubled(
    services: Services, sent: list[Sent], initial: dict[str, int]
) -> None:
    """Every command final and succeeded; no event, payment or notification twice; versions
    contiguous; stock conserved; read models equal a rebuild from the streams."""
    ids = [s.command_id for s in sent]
    final = await statuses(services, ids)
    failed = [i for i, status in final.items() if status != "succeeded"]
    assert not failed, (Counter(final.values()), await _why(services, failed[:3]))

    events = await domain_events(services.write, PARTITIONS)
    once = Counter((e.command_id, e.type, e.aggregate_id) for e in events)
    assert [k for k, n in once.items() if n > 1] == [], "an event was applied twice"
    versions: dict[tuple[str, str], list[int]] = defaultdict(list)
    for event in events:
        versions[(event.aggregate, event.aggregate_id)].append(event.version)
    for aggregate, seen in versions.items():
        assert sorted(seen) == list(range(1, len(seen) + 1)), (aggregate, sorted(seen))

    placed = await order_ids(services)
    mine = [placed[s.command_id] for s in sent if s.kind == "order"]
    paid = await captures(services.write)
    assert all(count <= 1 for count in paid.values()), "a payment was taken twice"
    sold: Counter[str] = Counter()
    for order_id in mine:
        order = await load_order(services, order_id)
        assert order.status == "confirmed", (order_id, order.status)
        assert paid.get(f"charge:{order_id}") == 1, order_id
        for line in order.lines:
            sold[line.sku] += line.quantity
    restocked: Counter[str] = Counter()
    for s in sent:
        if s.kind == "restock":
            restocked[s.body["sku"]] += s.body["quantity"]
    for sku, start in initial.items():
        product = await load_product(services, sku)
        assert (product.reserved, product.reservations) == (0, {}), sku
        assert product.sold == sold[sku], (sku, product.sold, sold[sku])
        assert product.on_hand == start + restocked[sku] - sold[sku], sku

    published = Counter(e["customer"] for e in await integration_events(services.write, 4))
    for customer in CUSTOMERS:
        unread = (await notifications.inbox(services.read_side, customer)).unread
        assert unread == published[customer], (customer, unread, published[customer])

    await assert_read_models_equal_a_rebuild(services)


async def assert_read_models_equal_a_rebuild(services: Services) -> None:
    """Every rebuildable read model, rebuilt into a shadow from the streams, equals the live
    one (the command log's capped lists too: each partition keeps its own, in its journal's
    order)."""
    settings = services.settings
    for name, make in rebuildable(settings).items():
        rebuild = ShadowRebuild(
            services.write,
            services.read,
            make(),
            settings.partitions,
            owner="chaos-check",
            lease_ms=settings.lease_ms,
        )
        await rebuild.start()
        try:
            await rebuild.follow()
            diff = await rebuild.cut(swap=False)
            await rebuild.abandon()
        finally:
            await rebuild.close()
        assert diff.same, (name, diff)
    assert set(REBUILDABLE) == set(rebuildable(settings))
