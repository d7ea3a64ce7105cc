"""Group commit on the client: calls made while a batch is out go together as the next one.

Many tasks (one per order, say) each asking for a little — reserve these two lines, load
that order — would each pay a round trip. Through a coalescer, the requests made in the same
moment go out as one batch, and the requests made while it is out wait for it and go out
together next: under load, batches grow by themselves; when idle, a request waits for
nothing but the current turn of the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    def __init__(self, run: Callable[[list[T]], Awaitable[Sequence[R]]]) -> None:
        """`run` answers a batch: one result per item, in order."""
        self._run = run
        self._waiting: list[tuple[Sequence[T], asyncio.Future[list[R]]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def submit(self, items: Sequence[T]) -> list[R]:
        if not items:
            return []
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._waiting.append((items, future))
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    results = await self._run([item for items, _ in batch for item in items])
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                offset = 0
                for items, future in batch:
                    if not future.done():
                        future.set_result(list(results[offset : offset + len(items)]))
                    offset += len(items)
        finally:
            self._draining = None
            for _, future in self._waiting:  # cancelled while more were waiting
                if not future.done():
                    future.set_exception(asyncio.CancelledError())
            self._waiting = []
