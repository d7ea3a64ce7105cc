"""The async command worker: competing consumers of the partitions' command streams.

An entry is acked only after its command committed (or was recorded as failed). If a worker
dies, its entries stay pending and another worker claims them once they have been idle for
CLAIM_IDLE_MS; while a long command runs, its worker keeps re-claiming it to show it is alive.
A command delivered more than MAX_DELIVERIES times is failed and dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import cast

import msgspec
from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.bus import CommandBus
from app.kernel.command_status import CommandStatusStore
from app.kernel.consumer import INFRA_ERRORS, DeadLetter, ensure_group, record_error
from app.kernel.errors import problem
from app.kernel.messages import CommandEnvelope
from app.kernel.redis_types import stream_entries

log = logging.getLogger(__name__)

GROUP = "commands"
CLAIM_IDLE_MS = 30_000
MAX_DELIVERIES = 5
_envelope_decoder = msgspec.json.Decoder(CommandEnvelope)


class CommandWorker:
    def __init__(
        self,
        redis: Redis,
        bus: CommandBus,
        statuses: CommandStatusStore,
        consumer: str,
        *,
        concurrency: int = 64,
        block_ms: int = 1000,
        claim_idle_ms: int = CLAIM_IDLE_MS,
    ) -> None:
        self._redis = redis
        self._bus = bus
        self._statuses = statuses
        self.consumer = consumer
        self._slots = asyncio.Semaphore(concurrency)
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        self._in_flight: dict[tuple[str, str], asyncio.Task[None]] = {}
        """Running entries by (stream, entry id): ids are unique per stream only."""
        self.processed = 0

    def _streams(self) -> list[str]:
        return [keys.commands(p) for p in range(self._bus.partitions)]

    async def run(self, stop: asyncio.Event) -> None:
        for stream in self._streams():
            await ensure_group(self._redis, stream, GROUP)
        upkeep = asyncio.create_task(self._upkeep(stop))
        try:
            await self._read(stop)
        finally:
            upkeep.cancel()
            if self._in_flight:
                await asyncio.gather(*self._in_flight.values(), return_exceptions=True)

    async def _read(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._slots.acquire()
                self._slots.release()
                reply = await self._redis.xreadgroup(
                    GROUP,
                    self.consumer,
                    dict.fromkeys(self._streams(), ">"),
                    count=32,
                    block=self._block_ms,
                )
            except INFRA_ERRORS as exc:
                log.warning("command stream unavailable: %s", exc)
                await _pause(stop, 1.0)
                continue
            for stream, entry_id, fields in stream_entries(reply):
                await self._start(stream, entry_id, fields)

    async def _start(self, stream: str, entry_id: str, fields: dict[str, str] | None) -> None:
        await self._slots.acquire()
        task = asyncio.create_task(self._handle(stream, entry_id, fields))
        self._in_flight[(stream, entry_id)] = task
        task.add_done_callback(lambda _t: self._done(stream, entry_id))

    def _done(self, stream: str, entry_id: str) -> None:
        self._in_flight.pop((stream, entry_id), None)
        self._slots.release()

    async def _handle(self, stream: str, entry_id: str, fields: dict[str, str] | None) -> None:
        try:
            if not fields or "c" not in fields:
                await self._redis.xack(stream, GROUP, entry_id)  # trimmed or foreign entry
                return
            try:
                envelope = _envelope_decoder.decode(fields["c"])
            except msgspec.DecodeError as exc:
                await self._dead_letter(stream, entry_id, fields, f"undecodable: {exc}")
                return
            try:
                partition = self._bus.partition(envelope)
                self._bus.registry.spec(envelope.type)
            except (ValueError, KeyError) as exc:
                await self._dead_letter(stream, entry_id, fields, f"not a command: {exc!r}")
                return
            await self._statuses.start_processing(partition, envelope.command_id)
            try:
                await self._bus.execute(envelope)
            except INFRA_ERRORS:
                raise
            except Exception as exc:  # a bug: record it, fail the command, never lose it silently
                log.exception("command %s crashed", envelope.command_id)
                await record_error(
                    self._redis, GROUP, f"{type(exc).__name__}: {exc}", dead_letter=False
                )
                await self._bus.fail(
                    envelope, problem("internal_error", 500, "The command could not be processed")
                )
            await self._redis.xack(stream, GROUP, entry_id)
            self.processed += 1
        except INFRA_ERRORS as exc:
            log.warning(
                "entry %s left pending (redis: %s); it will be claimed again", entry_id, exc
            )

    async def _dead_letter(
        self, stream: str, entry_id: str, fields: dict[str, str], error: str
    ) -> None:
        letter = DeadLetter(
            group=GROUP,
            stream=stream,
            entry_id=entry_id,
            fields=fields,
            error=error,
            at=time.time(),
        )
        await self._redis.xadd(keys.dead_letters(GROUP), {"e": msgspec.json.encode(letter)})
        await record_error(self._redis, GROUP, error, dead_letter=True)
        await self._redis.xack(stream, GROUP, entry_id)

    async def _upkeep(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await _pause(stop, 5.0)
            try:
                await self._keep_alive()
                await self._claim_abandoned()
            except INFRA_ERRORS as exc:
                log.warning("claim upkeep failed: %s", exc)

    async def _keep_alive(self) -> None:
        """Reset the idle time of what we are running, so no one claims it from under us."""
        by_stream: dict[str, list[str]] = {}
        for stream, entry_id in list(self._in_flight):
            by_stream.setdefault(stream, []).append(entry_id)
        for stream, ids in by_stream.items():
            await self._redis.xclaim(stream, GROUP, self.consumer, 0, list(ids), justid=True)

    async def _claim_abandoned(self) -> None:
        for stream in self._streams():
            reply = await self._redis.xautoclaim(
                stream, GROUP, self.consumer, self._claim_idle_ms, start_id="0-0", count=16
            )
            for entry_id, fields in cast(list[tuple[str, dict[str, str] | None]], reply[1]):
                if (stream, entry_id) in self._in_flight:
                    continue
                pending = await self._redis.xpending_range(stream, GROUP, entry_id, entry_id, 1)
                deliveries = int(pending[0]["times_delivered"]) if pending else 1
                if deliveries > MAX_DELIVERIES and fields and "c" in fields:
                    envelope = _envelope_decoder.decode(fields["c"])
                    await self._bus.fail(
                        envelope,
                        problem("internal_error", 500, "The command failed on every attempt"),
                    )
                    await self._dead_letter(stream, entry_id, fields, "too many deliveries")
                    continue
                log.info("claimed abandoned command entry %s", entry_id)
                await self._start(stream, entry_id, fields)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
