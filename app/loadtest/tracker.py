"""Which accepted orders have finished: pushed command statuses, else polling GET /api/commands."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

import msgspec

from app.loadtest.client import Credentials, LoadClient
from app.loadtest.wire import FINAL, Push

POLL_TICK = 0.25
POLL_CONCURRENCY = 8
EARLY_KEEP_SECONDS = 120.0
PRUNE_EVERY = 20


class Outcome(msgspec.Struct, frozen=True):
    status: str
    at: float
    """Wall-clock seconds when this client learnt it."""
    code: str | None = None
    polled: bool = False


class _Waiting(msgspec.Struct):
    future: asyncio.Future[Outcome]
    who: Credentials
    since: float
    polled_at: float = 0.0


class OrderTracker:
    """`expect(id)` gives a future of the order's outcome, fed by `on_push` and by polling."""

    def __init__(self, client: LoadClient, poll_after: float) -> None:
        self._client = client
        self._poll_after = poll_after
        self._waiting: dict[str, _Waiting] = {}
        self._early: dict[str, Outcome] = {}
        """Outcomes pushed before the POST that sent them returned (or for other shards)."""
        self.polled = 0

    def expect(self, command_id: str, who: Credentials) -> asyncio.Future[Outcome]:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        early = self._early.pop(command_id, None)
        if early is not None:
            future.set_result(early)
        else:
            self._waiting[command_id] = _Waiting(future, who, time.monotonic())
        return future

    def forget(self, command_id: str) -> None:
        self._waiting.pop(command_id, None)

    def on_push(self, push: Push) -> None:
        if push.type != "command" or push.command_id is None or push.status not in FINAL:
            return
        code = push.error.code if push.error else None
        self._finish(push.command_id, Outcome(push.status, time.time(), code))

    def _finish(self, command_id: str, outcome: Outcome) -> None:
        waiting = self._waiting.pop(command_id, None)
        if waiting is None:
            self._early[command_id] = outcome
        elif not waiting.future.done():
            waiting.future.set_result(outcome)

    async def poll_forever(self) -> None:
        """Every POLL_TICK, GET the status of each order unanswered for `poll_after` seconds."""
        slots = asyncio.Semaphore(POLL_CONCURRENCY)

        async def poll(command_id: str, waiting: _Waiting) -> None:
            async with slots:
                with contextlib.suppress(Exception):
                    status = await self._client.command_status(command_id, waiting.who)
                    if status is not None and status.status in FINAL:
                        self.polled += 1
                        code = status.error.code if status.error else None
                        self._finish(command_id, Outcome(status.status, time.time(), code, True))

        polls: set[asyncio.Task[None]] = set()
        for tick in itertools.count():
            await asyncio.sleep(POLL_TICK)
            now = time.monotonic()
            for command_id, waiting in list(self._waiting.items()):
                if now - max(waiting.since, waiting.polled_at) >= self._poll_after:
                    waiting.polled_at = now
                    task = asyncio.create_task(poll(command_id, waiting))
                    polls.add(task)
                    task.add_done_callback(polls.discard)
            if tick % PRUNE_EVERY == 0:
                stale = time.time() - EARLY_KEEP_SECONDS
                for command_id in [c for c, o in self._early.items() if o.at < stale]:
                    del self._early[command_id]
