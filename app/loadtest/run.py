"""Run a load test: sign in, make products, start the shards (in this process or `--procs`
processes), show progress, then fetch a sample of step times and report. One run from start
to report, read top to bottom (over 300 lines: its phases share the options and clients)."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import msgspec

from app.loadtest.client import Credentials, LoadClient
from app.loadtest.options import LoadOptions
from app.loadtest.report import (
    CLOCK_NOTE,
    Accepts,
    Orders,
    Push,
    Report,
    StepLatency,
    completed_rate,
    pct,
    progress_line,
    render,
)
from app.loadtest.shard import Counts, Done, Message, OrderRecord, Plan, Ready, Tick, run_shard
from app.loadtest.stats import epoch, step_gaps, summarize, transition_order
from app.loadtest.wire import CommandStatus, CreateProduct

SAMPLE_CONCURRENCY = 16
PRODUCT_PRICE_CENTS = 500
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
_encoder = msgspec.json.Encoder()
_messages = msgspec.json.Decoder(Message)
T = TypeVar("T")


class Setup(msgspec.Struct, frozen=True):
    customers: list[Credentials]
    admin: Credentials | None
    skus: list[str]
    run_id: str


async def prepare(options: LoadOptions) -> Setup:
    """Sign in; create `--create-products` products, or order from the catalog's own."""
    run_id = uuid.uuid4().hex[:6].upper()
    if options.ceiling:
        return Setup([], None, [], run_id)
    async with LoadClient(options.base_url, 4) as client:
        customers = [await client.sign_in(account) for account in options.users]
        admin = None
        if options.create_products or options.import_rows:
            admin = await client.sign_in(options.admin)
        if options.create_products:
            skus = [f"LT{run_id}-{n:04d}" for n in range(options.create_products)]
            for sku in skus:
                product = CreateProduct(sku, f"Load test {sku}", PRODUCT_PRICE_CENTS, options.stock)
                answer = await client.send(product, admin)
                if answer.status != 200:
                    raise RuntimeError(f"CreateProduct {sku}: {answer.status} {answer.code}")
        else:
            in_stock = [p for p in await client.products() if p.status == "active" and p.available]
            skus = [p.sku for p in in_stock]
            if not skus:
                raise RuntimeError("no product in stock to order: pass --create-products K")
            warning = sell_out_warning(options, sum(p.available for p in in_stock), len(skus))
            if warning:
                print(warning, file=sys.stderr, flush=True)
    return Setup(customers, admin, skus, run_id)


UNITS_PER_ORDER = 2  # an order has 1 to 3 lines of one unit each: 2 units on average


def sell_out_warning(options: LoadOptions, available: int, products: int) -> str:
    """What to say before ordering the catalog's own products ("" if the run surely fits)."""
    if options.orders:
        wanted = options.orders * UNITS_PER_ORDER
        if wanted < available:
            return ""
        reach = f"{options.orders:,} orders take about {wanted:,} units"
    else:
        reach = f"a {options.duration:g}-s run takes as many units as it can sell"
    return (
        f"warning: ordering the catalog's own {products} products ({available:,} units in "
        f"stock): {reach}, so this may sell the catalog out and later orders will be "
        "rejected (insufficient_stock). Drop --use-catalog to order products made for the run."
    )


def share(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


def plans(options: LoadOptions, setup: Setup) -> list[Plan]:
    procs = options.procs
    return [
        Plan(
            options=options,
            shard=i,
            shoppers=share(options.shoppers, procs, i),
            watchers=share(options.watchers, procs, i),
            orders=share(options.orders, procs, i),
            rate=options.rate / procs,
            offset=i / options.rate if options.rate else 0.0,
            customers=setup.customers,
            admin=setup.admin,
            skus=setup.skus,
            run_id=setup.run_id,
        )
        for i in range(procs)
    ]


class Gather:
    """What the shards reported so far: counts, samples, who is ready and who is done."""

    def __init__(self, shards: int) -> None:
        self.shards = shards
        self.counts: dict[int, Counts] = {}
        self.latencies: list[float] = []
        self.push: list[float] = []
        self.done: dict[int, Done] = {}
        self.ready: set[int] = set()
        self.all_ready = asyncio.Event()
        self.all_done = asyncio.Event()

    def receive(self, message: Message) -> None:
        if isinstance(message, Ready):
            self.ready.add(message.shard)
            if len(self.ready) == self.shards:
                self.all_ready.set()
        elif isinstance(message, Tick):
            self.counts[message.shard] = message.counts
            self.latencies += message.latency_ms
            self.push += message.push_ms
        else:
            self.done[message.shard] = message
            self.counts[message.shard] = message.counts
            if len(self.done) == self.shards:
                self.all_done.set()

    def total(self) -> Counts:
        total = Counts()
        for counts in self.counts.values():
            for name in Counts.__struct_fields__:
                setattr(total, name, getattr(total, name) + getattr(counts, name))
        return total


async def show_progress(gather: Gather, started: float) -> None:
    """The live line: in place on a terminal, a line every 5 s otherwise."""
    tty = sys.stderr.isatty()
    ticks = 0
    while True:
        await asyncio.sleep(1.0)
        ticks += 1
        total = gather.total()
        elapsed = time.monotonic() - started
        done = total.succeeded + total.rejected + total.failed
        line = progress_line(
            elapsed,
            total,
            completed_rate(done, elapsed),
            summarize(gather.latencies),
            gather.push,
        )
        if tty:
            print(f"\r{line}\x1b[K", end="", file=sys.stderr, flush=True)
        elif ticks % 5 == 0:
            print(line, file=sys.stderr, flush=True)


async def run_in_process(plan: Plan, gather: Gather) -> None:
    await run_shard(plan, gather.receive, gather.all_ready.wait)


def shard_process(encoded: bytes, conn: Connection) -> None:
    """Entry point of a `--procs` child: run its shard, talking to the parent over `conn`."""
    plan = msgspec.json.decode(encoded, type=Plan)

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def go() -> None:
            await loop.run_in_executor(None, conn.recv_bytes)

        await run_shard(plan, lambda message: conn.send_bytes(_encoder.encode(message)), go)

    _runner(main)
    conn.close()


async def run_in_processes(plans_: list[Plan], gather: Gather) -> None:
    context = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    children = []
    for plan in plans_:
        parent, child = context.Pipe()
        process = context.Process(
            target=shard_process, args=(_encoder.encode(plan), child), daemon=True
        )
        process.start()
        child.close()
        children.append((process, parent))

    async def listen(conn: Connection) -> None:
        """Messages of one child, until it sent Done (a closed pipe before that is an error)."""
        while True:
            try:
                message = _messages.decode(await loop.run_in_executor(None, conn.recv_bytes))
            except EOFError:
                raise RuntimeError("a client process exited before it was done") from None
            gather.receive(message)
            if isinstance(message, Done):
                return

    async def start_when_ready() -> None:
        await gather.all_ready.wait()
        for _, conn in children:
            conn.send_bytes(b"go")

    try:
        await asyncio.gather(start_when_ready(), *(listen(conn) for _, conn in children))
    finally:
        for process, conn in children:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)
            conn.close()


async def fetch_steps(
    options: LoadOptions, setup: Setup, records: list[OrderRecord]
) -> list[CommandStatus]:
    """GET /api/commands/<id> (as its sender) for a sample of the finished orders."""
    finished = [r for r in records if r.status != "unfinished"]
    if options.sample and len(finished) > options.sample:
        finished = random.Random(options.seed).sample(finished, options.sample)
    slots = asyncio.Semaphore(SAMPLE_CONCURRENCY)
    async with LoadClient(options.base_url, SAMPLE_CONCURRENCY) as client:

        async def one(record: OrderRecord) -> CommandStatus | None:
            async with slots:
                return await client.command_status(
                    record.command_id, setup.customers[record.customer]
                )

        found = await asyncio.gather(*(one(r) for r in finished))
    return [status for status in found if status is not None]


def build_report(
    options: LoadOptions, gather: Gather, statuses: list[CommandStatus], started_at: float
) -> Report:
    total = gather.total()
    done = list(gather.done.values())
    first = min((d.first_sent for d in done if d.first_sent), default=started_at)
    last_answer = max((d.last_answer for d in done if d.last_answer), default=first)
    ended = max(d.ended for d in done)
    last = max((d.last_outcome for d in done if d.last_outcome), default=last_answer)
    error_kinds: dict[str, int] = defaultdict(int)
    failure_codes: dict[str, int] = defaultdict(int)
    rejection_codes: dict[str, int] = defaultdict(int)
    close_codes: dict[str, int] = defaultdict(int)
    for d in done:
        for target, source in (
            (error_kinds, d.error_kinds),
            (failure_codes, d.failure_codes),
            (rejection_codes, d.rejection_codes),
            (close_codes, d.close_codes),
        ):
            for name, n in source.items():
                target[name] += n
    gaps: dict[str, list[float]] = defaultdict(list)
    end_to_end = []
    for status in statuses:
        steps = [(step.name, step.at) for step in status.steps]
        for transition, ms in step_gaps(steps):
            gaps[transition].append(ms)
        times = {name: at for name, at in steps if at}
        if status.status == "succeeded" and "accepted" in times and "succeeded" in times:
            end_to_end.append((epoch(times["succeeded"]) - epoch(times["accepted"])) * 1000)
    attempts = total.attempts
    completed = total.succeeded + total.rejected + total.failed
    host = urlsplit(options.base_url).hostname or ""
    if options.ceiling:
        mode = "ceiling (constant body, any 2xx)"
    elif options.rate:
        mode = f"open loop at {options.rate:g} orders/s"
    else:
        mode = "closed loop"
    return Report(
        url=options.base_url,
        mode=mode,
        shoppers=options.shoppers,
        watchers=options.watchers,
        procs=options.procs,
        started_at=datetime.fromtimestamp(started_at, UTC).isoformat(timespec="seconds"),
        seconds=round((max(last, last_answer) if total.attempts else ended) - first, 3),
        accepts=Accepts(
            attempts=attempts,
            accepted=total.accepted,
            shed=total.shed,
            limited=total.limited,
            errors=total.errors,
            accepted_per_second=round(total.accepted / max(last_answer - first, 1e-9), 2),
            accepted_pct=pct(total.accepted, attempts),
            shed_pct=pct(total.shed, attempts),
            limited_pct=pct(total.limited, attempts),
            error_pct=pct(total.errors, attempts),
            error_kinds=dict(error_kinds),
        ),
        orders=Orders(
            completed=completed,
            succeeded=total.succeeded,
            rejected=total.rejected,
            failed=total.failed,
            unfinished=total.unfinished,
            completed_per_second=completed_rate(completed, last - first),
            by_polling=total.polled,
            rejection_codes=dict(rejection_codes),
            failure_codes=dict(failure_codes),
        ),
        client_latency_ms=summarize(gather.latencies),
        sampled=len(statuses),
        steps=[
            StepLatency(transition, summarize(gaps[transition]))
            for transition in sorted(gaps, key=transition_order)
        ],
        end_to_end_ms=summarize(end_to_end),
        push=Push(
            watchers=options.watchers,
            messages=total.push_messages,
            latency_ms=summarize(gather.push),
            watchers_dropped=total.watcher_dropped,
            command_sockets_dropped=total.command_dropped,
            close_codes=dict(close_codes),
            note=None if host in LOCAL_HOSTS else f"{CLOCK_NOTE} (the server is {host})",
        ),
    )


async def load_test(options: LoadOptions) -> Report:
    setup = await prepare(options)
    made = plans(options, setup)
    gather = Gather(len(made))
    started_at = time.time()
    progress = None
    if not options.quiet:
        progress = asyncio.create_task(show_progress(gather, time.monotonic()))
    try:
        if options.procs == 1:
            await run_in_process(made[0], gather)
        else:
            await run_in_processes(made, gather)
    finally:
        if progress is not None:
            progress.cancel()
            if sys.stderr.isatty():
                print(file=sys.stderr)
    records = [record for done in gather.done.values() for record in done.orders]
    statuses = [] if options.ceiling else await fetch_steps(options, setup, records)
    return build_report(options, gather, statuses, started_at)


def main(options: LoadOptions) -> int:
    try:
        report = _runner(lambda: load_test(options))
    except (aiohttp.ClientError, OSError, RuntimeError) as exc:
        print(f"storefront loadtest: {exc}", file=sys.stderr)
        return 1
    print(render(report))
    if options.json_path:
        with open(options.json_path, "wb") as out:
            out.write(msgspec.json.format(msgspec.json.encode(report)) + b"\n")
    return 0


def _runner(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run on uvloop when it is installed (it is, with uvicorn[standard])."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(main())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())
