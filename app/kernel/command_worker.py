"""The async command worker: the handler of the partitions' command streams.

A PartitionedConsumer runs it, so each partition's queue has one owner at a time, read in
batches: a batch is run by the bus as one (grouped by aggregate, in stream order, two round
trips), and acknowledged in bulk once its commits are in. A worker that dies leaves its
entries pending; the partition's next owner reads them first, and each command's dedup
record makes a repeat return the recorded outcome.

A fast command goes from `accepted` to its outcome in its commit; `processing` is written
only when a batch takes long enough for a person to notice. Runners (a bulk import) run in
the background, acknowledged when they end, so they hold up nothing behind them.

A traced command (its envelope has a traceparent) gets a `process` span here, from when its
batch was taken to its end, continuing the trace of whoever queued it; its decisions,
commits, events and statuses then continue this span.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import msgspec
from opentelemetry.trace import Span
from redis.asyncio import Redis

from app.kernel import keys, tracing
from app.kernel.bus import CommandBus
from app.kernel.command_status_store import CommandStatusStore
from app.kernel.consumer import INFRA_ERRORS, Entry, dead_letter
from app.kernel.errors import problem
from app.kernel.log_context import working_for
from app.kernel.messages import CommandEnvelope

log = logging.getLogger(__name__)

GROUP = "commands"
PROCESSING_AFTER_SECONDS = 0.25
"""A batch still running after this long shows its commands as `processing`."""
_envelope_decoder = msgspec.json.Decoder(CommandEnvelope)


class CommandQueue:
    group = GROUP
    retention_seconds = 0.0
    """An acknowledged command's entry is needed no more: trimmed (see stream_trim)."""

    def __init__(
        self,
        redis: Redis,
        bus: CommandBus,
        statuses: CommandStatusStore,
        *,
        processing_after: float = PROCESSING_AFTER_SECONDS,
    ) -> None:
        self._redis = redis
        self._bus = bus
        self._statuses = statuses
        self._processing_after = processing_after
        self._runners: dict[tuple[int, str], asyncio.Task[None]] = {}
        self.processed = 0

    def stream(self, partition: int) -> str:
        return keys.commands(partition)

    async def handle(self, partition: int, entries: list[Entry]) -> list[str]:
        batch: list[CommandEnvelope] = []
        deferred: list[str] = []
        spans: list[Span] = []
        taken = time.time()
        stage = self._bus.instruments.stage
        for entry in entries:
            envelope = await self._envelope(partition, entry)
            if envelope is None:
                continue
            stage(envelope.type, "queued", max(0.0, taken - envelope.accepted_at))
            span = None
            if envelope.traceparent:
                envelope, span = self._traced(partition, entry, envelope)
            if self._bus.registry.spec(envelope.type).runner is not None:
                deferred.append(entry.id)
                self._start_runner(partition, entry.id, envelope, span)
            else:
                batch.append(envelope)
                if span is not None:
                    spans.append(span)
        try:
            if batch:
                await self._run(partition, batch)
        finally:
            for span in spans:
                tracing.end(span)
        self.processed += len(batch)
        return deferred

    def _traced(
        self, partition: int, entry: Entry, envelope: CommandEnvelope
    ) -> tuple[CommandEnvelope, Span | None]:
        """The command's `process` span, and its envelope continuing it."""
        span = tracing.processing(
            self.stream(partition),
            GROUP,
            entry.id,
            envelope.traceparent,
            {tracing.COMMAND_TYPE: envelope.type},
            message_id=envelope.command_id,
        )
        if span is None:
            return envelope, None
        return msgspec.structs.replace(envelope, traceparent=tracing.of(span)), span

    async def skip(self, partition: int, entry: Entry) -> None:
        """The batch kept failing on this entry (a bug): its command fails, visibly."""
        envelope = _envelope_decoder.decode(entry.fields["c"])
        await self._bus.fail(
            envelope, problem("internal_error", 500, "The command could not be processed")
        )

    async def _envelope(self, partition: int, entry: Entry) -> CommandEnvelope | None:
        """The entry's command, or None when it holds none (dead-lettered if it is garbage)."""
        if "c" not in entry.fields:
            return None  # a foreign entry: acknowledged and ignored
        stream = self.stream(partition)
        try:
            envelope = _envelope_decoder.decode(entry.fields["c"])
        except msgspec.DecodeError as exc:
            await dead_letter(self._redis, GROUP, partition, stream, entry, f"undecodable: {exc}")
            return None
        try:
            self._bus.partition(envelope)
            self._bus.registry.spec(envelope.type)
        except (ValueError, KeyError) as exc:
            await dead_letter(
                self._redis, GROUP, partition, stream, entry, f"not a command: {exc!r}"
            )
            return None
        return envelope

    async def _run(self, partition: int, batch: list[CommandEnvelope]) -> None:
        running = asyncio.ensure_future(self._bus.execute_batch(batch, "queued"))
        done, _ = await asyncio.wait({running}, timeout=self._processing_after)
        if not done:  # (a command followed by a process shows `processing` from its commit)
            visible = [
                e.command_id
                for e in batch
                if not e.internal and self._bus.registry.spec(e.type).follow is None
            ]
            with contextlib.suppress(*INFRA_ERRORS):
                await self._statuses.start_processing(partition, visible)
        await running

    def _start_runner(
        self, partition: int, entry_id: str, envelope: CommandEnvelope, span: Span | None
    ) -> None:
        key = (partition, entry_id)
        if key in self._runners:
            tracing.end(span)
            return  # read again while it runs (after a Redis hiccup): it is ours already
        task = asyncio.create_task(self._runner(partition, entry_id, envelope, span))
        self._runners[key] = task
        task.add_done_callback(lambda _t: self._runners.pop(key, None))

    async def _runner(
        self, partition: int, entry_id: str, envelope: CommandEnvelope, span: Span | None
    ) -> None:
        with tracing.current_span(span), working_for(envelope.command_id):
            try:
                await self._run_runner(partition, entry_id, envelope)
            finally:
                tracing.end(span)

    async def _run_runner(self, partition: int, entry_id: str, envelope: CommandEnvelope) -> None:
        try:
            await self._statuses.start_processing(partition, [envelope.command_id])
            try:
                await self._bus.execute(envelope)
            except INFRA_ERRORS:
                raise
            except Exception:  # a bug: the command fails visibly, never silently
                log.exception("command %s crashed", envelope.command_id)
                await self._bus.fail(
                    envelope, problem("internal_error", 500, "The command could not be processed")
                )
            await self._redis.xack(self.stream(partition), GROUP, entry_id)
            self.processed += 1
        except INFRA_ERRORS as exc:
            log.warning("command %s left pending (redis: %s)", envelope.command_id, exc)

    async def close(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Let running runners finish (up to `timeout`); the rest stay pending for later."""
        if not self._runners:
            return
        tasks = set(self._runners.values())
        _, late = await asyncio.wait(tasks, timeout=timeout)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
