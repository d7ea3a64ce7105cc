"""Applying a partition's batch: a failed batch is retried entry by entry, an entry that
keeps failing is dead-lettered and its key parked behind it (kernel/parking.py).

Redis trouble and a lost lease are never a handler's failure: they go up to the read loop,
which reads the entries again. A batch holding traced entries (a `tp` field) is one span,
linked to each entry's context and current while the handler runs; the handler's own span
for each traced entry continues that entry's trace and links back to the batch
(kernel/tracing.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection

from opentelemetry.trace import Span
from redis.asyncio import Redis

from app.kernel import tracing
from app.kernel.backoff import Backoff
from app.kernel.consumer_health import PartitionHealth, record_error
from app.kernel.dead_letters import DeadLetter, DeadLetters
from app.kernel.handlers import INFRA_ERRORS, Entry, LeaseLost, PartitionHandler
from app.kernel.parking import Parking

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4
HANDLER_RETRY = Backoff(first=0.05, cap=2.0)


class BatchApplier:
    """Hands one owned partition's entries to its handler."""

    def __init__(
        self,
        redis: Redis,
        handler: PartitionHandler,
        partition: int,
        stop: asyncio.Event,
        health: PartitionHealth,
        parking: Parking,
    ) -> None:
        self._redis = redis
        self._handler = handler
        self._partition = partition
        self._stop = stop
        self._health = health
        self._parking = parking

    async def apply(self, entries: list[Entry]) -> Collection[str]:
        """Apply a batch; entries of parked keys are set aside behind their failed entry,
        and an entry that keeps failing is dead-lettered, its key parked behind it.
        Returns the entries the handler goes on with in the background (left pending)."""
        handler, partition, parking = self._handler, self._partition, self._parking
        live = [e for e in entries if e.fields]  # a trimmed entry comes back empty
        free = await parking.hold(live)
        set_aside = len(free) < len(live)
        deferred: list[str] = []
        batch = _batch_span(handler, partition, free)
        try:
            if free:
                with tracing.current_span(batch):
                    deferred += await handler.handle(partition, free) or ()
        except (LeaseLost, *INFRA_ERRORS) as exc:
            tracing.end(batch, type(exc).__name__)
            batch = None
            raise
        except Exception:
            tracing.end(batch, "the batch failed: retried one by one")
            batch = None
            if len(free) > 1:
                log.exception(
                    "%s partition %d: batch failed, retrying one by one", handler.group, partition
                )
            for entry in free:
                if parking.held(entry):  # an entry before it, of the same key, just failed
                    await parking.hold([entry])
                    set_aside = True
                else:
                    deferred += await self._retry_one(entry)
        finally:
            tracing.end(batch)
        if set_aside:  # the checkpoint moves past what was set aside (a retry replays it)
            await handler.skip(partition, live[-1])
        return deferred

    async def _retry_one(self, entry: Entry) -> Collection[str]:
        handler = self._handler
        error = ""
        for attempt in range(MAX_ATTEMPTS):
            try:
                return await handler.handle(self._partition, [entry]) or ()
            except (LeaseLost, *INFRA_ERRORS):
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.exception(
                    "%s: entry %s failed (attempt %d)", handler.group, entry.id, attempt + 1
                )
                self._health.failed(error)
                await record_error(self._redis, handler.group, error, dead_letter=False)
                await HANDLER_RETRY.sleep(attempt, self._stop)
        await self._parking.give_up(entry, error, MAX_ATTEMPTS)
        await record_error(self._redis, handler.group, error, dead_letter=True)
        await handler.skip(self._partition, entry)
        return ()


async def dead_letter(
    redis: Redis, group: str, partition: int, stream: str, entry: Entry, error: str
) -> None:
    """Park an entry that can never be applied (e.g. garbage on a queue), counted."""
    await DeadLetters(redis, group).add(
        DeadLetter(
            group=group,
            stream=stream,
            entry_id=entry.id,
            fields=entry.fields,
            error=error,
            at=time.time(),
            partition=partition,
        )
    )
    await record_error(redis, group, error, dead_letter=True)
    log.error("%s: entry %s of %s dead-lettered: %s", group, entry.id, stream, error)


def _batch_span(handler: PartitionHandler, partition: int, entries: list[Entry]) -> Span | None:
    """A span for a batch of several entries, some of them traced (else None)."""
    if len(entries) < 2 or not tracing.enabled():
        return None
    stream = handler.stream(partition)
    return tracing.batch(
        f"process {stream}",
        (entry.fields.get(tracing.FIELD, "") for entry in entries),
        tracing.messaging("process", stream, group=handler.group, count=len(entries)),
    )
