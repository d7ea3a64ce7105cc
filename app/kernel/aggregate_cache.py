"""Per-process memory of aggregates: their last known state and version, and a lock each.

Commands on one aggregate in one process run one at a time (no retry storms among
themselves), and a process deciding on an aggregate it committed last needs no read: the
commit's version check catches anyone else's write, and the bus then reloads and decides again.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

MAX_ENTRIES = 20_000


@dataclass(frozen=True)
class Known:
    """An aggregate as last seen: its version, the command that wrote it last, its state."""

    version: int
    writer: str
    state: Any


NOTHING = Known(0, "", None)


class AggregateCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[str, Known] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}
        self._max = max_entries

    def get(self, key: str) -> Known | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: str, known: Known) -> None:
        self._entries[key] = known
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def drop(self, key: str) -> None:
        self._entries.pop(key, None)

    @asynccontextmanager
    async def locks(self, keys: Iterable[str]) -> AsyncIterator[None]:
        """Several aggregates' locks, always taken in the same (sorted) order."""
        async with AsyncExitStack() as stack:
            for key in sorted(set(keys)):
                await stack.enter_async_context(self.lock(key))
            yield

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                del self._locks[key]
