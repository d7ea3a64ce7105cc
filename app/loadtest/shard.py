"""One client process's share of the load: its shoppers, watchers and sockets.

A shard reports to its runner through `emit`: `Ready` once every socket is subscribed,
`Tick`s while it runs (new latency samples and cumulative counts), and `Done` at the end.

Over 300 lines, one job: a shard's shoppers, watchers and reports share one event loop
and its counters, read top to bottom.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import aiohttp
import msgspec

from app.loadtest.client import Answer, Credentials, LoadClient
from app.loadtest.options import LoadOptions
from app.loadtest.sockets import SocketStats, cancel_all, catalog_latency, follow, settled
from app.loadtest.tracker import POLL_CONCURRENCY, OrderTracker, Outcome
from app.loadtest.wire import ImportCatalog, Line, PlaceOrder, ProductRow, Push
from app.outcomes import OUTCOMES

TICK_SECONDS = 0.5
READY_TIMEOUT = 60.0
CEILING_BODY = {"type": "Ping"}


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    options: LoadOptions
    shard: int
    shoppers: int
    watchers: int
    orders: int
    """This shard's share of `--orders` (0: run for `options.duration`)."""
    rate: float
    """This shard's share of the arrivals per second (0: closed loop)."""
    offset: float = 0.0
    """Open loop: seconds after the start of this shard's first arrival."""
    customers: list[Credentials] = []
    admin: Credentials | None = None
    skus: list[str] = []
    run_id: str = ""


class Counts(msgspec.Struct, kw_only=True):
    attempts: int = 0
    accepted: int = 0
    shed: int = 0
    limited: int = 0
    errors: int = 0
    succeeded: int = 0
    rejected: int = 0
    """Refused by a business rule (a declined card, not enough stock)."""
    failed: int = 0
    """Something went wrong (app/kernel/outcomes.py)."""
    unfinished: int = 0
    polled: int = 0
    watcher_dropped: int = 0
    command_dropped: int = 0
    push_messages: int = 0


class OrderRecord(msgspec.Struct, frozen=True, array_like=True):
    command_id: str
    customer: int
    """Index of its sender in `Plan.customers` (only the sender may read its status)."""
    status: str
    """succeeded, failed, or unfinished (no outcome within --order-timeout)."""
    latency_ms: float | None


class Ready(msgspec.Struct, frozen=True, tag=True):
    shard: int


class Tick(msgspec.Struct, frozen=True, tag=True):
    shard: int
    counts: Counts
    latency_ms: list[float]
    """Client-seen latency of the orders finished since the last tick (send → outcome)."""
    push_ms: list[float]


class Done(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    shard: int
    counts: Counts
    started: float
    ended: float
    """When this shard's shoppers (or watchers) stopped."""
    first_sent: float | None
    last_answer: float | None
    last_outcome: float | None
    orders: list[OrderRecord]
    error_kinds: dict[str, int]
    failure_codes: dict[str, int]
    close_codes: dict[str, int]
    rejection_codes: dict[str, int] = {}


Message = Ready | Tick | Done
Emit = Callable[[Message], None]


class Shop:
    """The shoppers of one shard: what they send, and what came of it."""

    def __init__(self, plan: Plan, client: LoadClient, tracker: OrderTracker) -> None:
        self.plan = plan
        self.counts = Counts()
        self.new_latencies: list[float] = []
        self.orders: list[OrderRecord] = []
        self.error_kinds: Counter[str] = Counter()
        self.failure_codes: Counter[str] = Counter()
        self.rejection_codes: Counter[str] = Counter()
        self.first_sent: float | None = None
        self.last_outcome: float | None = None
        self.last_answer: float | None = None
        self._client = client
        self._tracker = tracker
        self._random = random.Random(plan.options.seed * 1000 + plan.shard)
        self._left = plan.orders
        self._deadline = 0.0

    # --- the loops --------------------------------------------------------------------------

    async def run(self) -> None:
        self._deadline = time.monotonic() + self.plan.options.duration
        if self.plan.rate > 0:
            await self.open_loop()
            return
        customers: list[Credentials | None] = [*self.plan.customers] or [None]
        if not self.plan.shoppers:  # watchers only: watch for the duration
            await asyncio.sleep(max(0.0, self._deadline - time.monotonic()))
        await asyncio.gather(
            *(self.closed_loop(customers[n % len(customers)]) for n in range(self.plan.shoppers))
        )

    async def closed_loop(self, who: Credentials | None) -> None:
        """Place an order, wait for its outcome, again; a shed order waits its Retry-After."""
        while self._take():
            body = self._body()
            while True:
                sent = time.time()
                answer = await self._send(body, who)
                if answer is None:
                    break
                if self._accepted(answer):
                    await self._outcome(answer, who, sent)
                    break
                if answer.status not in (429, 503) or not self._backs_off(answer):
                    break
                pause = min(answer.retry_after or 1.0, 30.0)
                if self.plan.orders == 0:
                    pause = min(pause, self._deadline - time.monotonic())
                    if pause <= 0:
                        break
                await asyncio.sleep(pause)

    async def open_loop(self) -> None:
        """Arrivals at `rate` per second whatever completes; latency counts from each
        arrival's due time, so a slow server cannot hide its queue (no coordinated omission)."""
        customers: list[Credentials | None] = [*self.plan.customers] or [None]
        start = time.monotonic() + self.plan.offset
        in_flight: set[asyncio.Task[None]] = set()
        for n in itertools.count():
            due = start + n / self.plan.rate
            if self.plan.orders and n >= self.plan.orders:
                break
            if not self.plan.orders and due >= self._deadline:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            task = asyncio.create_task(
                self.arrival(customers[n % len(customers)], time.time() - (time.monotonic() - due))
            )
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)

    async def arrival(self, who: Credentials | None, due: float) -> None:
        answer = await self._send(self._body(), who)
        if answer is not None and self._accepted(answer):
            await self._outcome(answer, who, due)

    # --- one order ----------------------------------------------------------------------------

    def _take(self) -> bool:
        if self.plan.orders == 0:
            return time.monotonic() < self._deadline
        if self._left <= 0:
            return False
        self._left -= 1
        return True

    def _body(self) -> object:
        if self.plan.options.ceiling:
            return CEILING_BODY
        skus = self._random.sample(
            self.plan.skus, min(len(self.plan.skus), self._random.randint(1, 3))
        )
        return PlaceOrder([Line(sku, 1) for sku in skus])

    def _accepted(self, answer: Answer) -> bool:
        if self.plan.options.ceiling:
            return 200 <= answer.status < 300
        return answer.status == 202 and answer.command_id is not None

    def _backs_off(self, answer: Answer) -> bool:
        """429, and 503 `overloaded` (back-pressure, not an outage), say when to come back."""
        return (
            answer.status == 429
            or answer.code == "overloaded"
            or (answer.retry_after is not None and answer.code != "unavailable")
        )

    async def _send(self, body: object, who: Credentials | None) -> Answer | None:
        counts = self.counts
        counts.attempts += 1
        if self.first_sent is None:
            self.first_sent = time.time()
        try:
            answer = await self._client.send(body, who)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            counts.errors += 1
            self.error_kinds[type(exc).__name__] += 1
            return None
        finally:
            self.last_answer = time.time()
        if self._accepted(answer):
            counts.accepted += 1
        elif answer.status == 503 and self._backs_off(answer):
            counts.shed += 1
        elif answer.status == 429:
            counts.limited += 1
        else:
            counts.errors += 1
            self.error_kinds[f"{answer.status} {answer.code or ''}".strip()] += 1
        return answer

    async def _outcome(self, answer: Answer, who: Credentials | None, since: float) -> None:
        if self.plan.options.ceiling or answer.command_id is None or who is None:
            self.new_latencies.append((time.time() - since) * 1000)
            return
        future = self._tracker.expect(answer.command_id, who)
        try:
            outcome: Outcome = await asyncio.wait_for(future, self.plan.options.order_timeout)
        except TimeoutError:
            self._tracker.forget(answer.command_id)
            self.counts.unfinished += 1
            self.orders.append(OrderRecord(answer.command_id, self._index(who), "unfinished", None))
            return
        latency = (outcome.at - since) * 1000
        self.new_latencies.append(latency)
        self.last_outcome = max(self.last_outcome or 0.0, outcome.at)
        kind = OUTCOMES.of(outcome.status, outcome.code or "")
        if kind == "succeeded":
            self.counts.succeeded += 1
        elif kind == "rejected":
            self.counts.rejected += 1
            self.rejection_codes[outcome.code or "unknown"] += 1
        else:
            self.counts.failed += 1
            self.failure_codes[outcome.code or "unknown"] += 1
        self.orders.append(
            OrderRecord(answer.command_id, self._index(who), outcome.status, round(latency, 3))
        )

    def _index(self, who: Credentials) -> int:
        return self.plan.customers.index(who)


async def run_shard(plan: Plan, emit: Emit, go: Callable[[], Awaitable[object]]) -> None:
    """Open the sockets, say Ready, wait for `go`, run the shoppers, report Done."""
    options = plan.options
    customers = plan.customers if not options.ceiling else []
    pool = plan.shoppers + POLL_CONCURRENCY + len(customers) + plan.watchers + 2
    async with LoadClient(options.base_url, pool) as client:
        tracker = OrderTracker(client, options.poll_after)
        shop = Shop(plan, client, tracker)
        commands, watchers = SocketStats(), SocketStats()
        readies: list[asyncio.Event] = []
        tasks: list[asyncio.Task[None]] = []

        def open_socket(
            who: Credentials | None,
            topic: str,
            on_push: Callable[[Push, float, float], None],
            stats: SocketStats,
        ) -> None:
            ready = asyncio.Event()
            readies.append(ready)
            tasks.append(asyncio.create_task(follow(client, who, topic, on_push, stats, ready)))

        if plan.shoppers and not options.ceiling:
            for who in customers:
                open_socket(
                    who, "commands", lambda push, _at, _since: tracker.on_push(push), commands
                )
            tasks.append(asyncio.create_task(tracker.poll_forever()))
        for _ in range(plan.watchers):
            open_socket(None, "catalog", catalog_latency(watchers), watchers)
        try:
            await _all_ready(readies, tasks)
            emit(Ready(plan.shard))
            await go()
            started = time.time()

            def tick() -> Tick:
                counts = shop.counts
                counts.polled = tracker.polled
                counts.watcher_dropped, counts.command_dropped = watchers.dropped, commands.dropped
                counts.push_messages = watchers.messages
                latencies, shop.new_latencies = shop.new_latencies, []
                pushed, watchers.push_ms = watchers.push_ms, []
                return Tick(plan.shard, msgspec.structs.replace(counts), latencies, pushed)

            async def ticker() -> None:
                while True:
                    await asyncio.sleep(TICK_SECONDS)
                    emit(tick())

            tasks.append(asyncio.create_task(ticker()))
            if plan.shard == 0 and options.import_rows and plan.admin is not None:
                tasks.append(asyncio.create_task(_import_burst(client, plan, shop)))
            await shop.run()
            ended = time.time()
            if plan.watchers:  # the catalog pushes of the last orders are still on their way
                await settled(watchers, shop.counts.succeeded > 0, time.monotonic())
        finally:
            await cancel_all(tasks)
        emit(tick())
        emit(
            Done(
                shard=plan.shard,
                counts=shop.counts,
                started=started,
                ended=ended,
                first_sent=shop.first_sent,
                last_answer=shop.last_answer,
                last_outcome=shop.last_outcome,
                orders=shop.orders,
                error_kinds=dict(shop.error_kinds),
                failure_codes=dict(shop.failure_codes),
                rejection_codes=dict(shop.rejection_codes),
                close_codes={
                    **{f"watcher {k}": v for k, v in watchers.close_codes.items()},
                    **{f"commands {k}": v for k, v in commands.close_codes.items()},
                },
            )
        )


async def _all_ready(readies: list[asyncio.Event], tasks: list[asyncio.Task[None]]) -> None:
    """Every socket subscribed; a socket task that failed meanwhile raises its error."""
    deadline = time.monotonic() + READY_TIMEOUT
    while not all(ready.is_set() for ready in readies):
        for task in tasks:
            if task.done():
                task.result()
        if time.monotonic() > deadline:
            raise TimeoutError(f"sockets not subscribed within {READY_TIMEOUT:g} s")
        await asyncio.sleep(0.02)


async def _import_burst(client: LoadClient, plan: Plan, shop: Shop) -> None:
    """One ImportCatalog of `--import-rows` new products: a burst of catalog changes."""
    rows = [
        ProductRow(f"LT{plan.run_id}-I{n:05d}", f"Burst {n}", 100, 10)
        for n in range(plan.options.import_rows)
    ]
    answer = await client.send(ImportCatalog(rows), plan.admin)
    if answer.status != 202:
        shop.error_kinds[f"ImportCatalog {answer.status} {answer.code or ''}".strip()] += 1
