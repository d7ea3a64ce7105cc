"""The projector's one pass over a partition's stream, for every read model that reads it.

One consumer group per stream (`projector.events`, `pass_group`) reads each partition once
for all the projections the projector runs on it. Each entry is decoded once — its head, and
its event with one decoder of every event any of them handles — and given to each projection
whose `handles` has its type. A batch costs two round trips on the read Redis whatever the
number of read models: their checkpoints and the applied versions of the batch's aggregates,
read together; then one script (apply_batch.lua) that writes every read model's changes, its
versions and its checkpoint, and the change notices, only if no checkpoint moved meanwhile.

Each read model keeps its own checkpoint and versions (and its own dead letters, health and
spans, under its own group name `projection.<name>`), so it may stand elsewhere than the pass:

* **paused** while an operator paused its group (kernel/pauses.py), or while anyone holds its
  own lease for the partition (a rebuild's cut; a projector of the one-group-per-read-model
  kind during a rolling deploy): the pass leaves it out;
* **behind** when its checkpoint is not where the pass is (a new read model, one back from a
  pause, one a rebuild swapped in): the entries in between are read through the archive
  reader and applied for it alone, a chunk per batch (the others never wait for more), and
  it joins the batch once it reaches it;
* **ahead**: entries at or before its checkpoint are skipped for it.

A poison entry for one read model is retried at once (applying is pure: no reads, nothing to
wait for), then dead-lettered for that read model alone and its key parked in that read
model's dead letters; the other read models take the entry as usual.

Over 300 lines, one job: the pass's batch, from read to one script, with its read models
left out, behind or ahead, each case beside the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.trace import Span
from redis.asyncio import Redis

from app.kernel import keys, tracing
from app.kernel.archive.groups import before
from app.kernel.archive.manifest import START
from app.kernel.archive.reader import ArchiveReader
from app.kernel.handlers import Entry, LeaseLost
from app.kernel.instruments import NO_INSTRUMENTS, Instruments
from app.kernel.notices import ViewNotice, notice_fields
from app.kernel.parking import Parking
from app.kernel.pass_groups import pass_group, take_over_groups
from app.kernel.pass_model import Head, PassModel, decode_heads, shared_decoder
from app.kernel.positions import parse_stream_id
from app.kernel.projection import (
    NOTICE_TRACES,
    VIEW_NOTICES_MAXLEN,
    Decoded,
    Projected,
    Projection,
    ProjectionHandler,
    command_args,
    recorder,
    run_apply,
)
from app.kernel.redis_types import optional_text, range_entries
from app.kernel.replication import NO_WAIT, Replication
from app.kernel.views import View

log = logging.getLogger(__name__)

CATCH_UP_CHUNK = 2000
"""Entries a read model that is behind catches up by per batch of the pass."""
PAUSES_EVERY_SECONDS = 0.5
"""How often the pass looks whether a read model's own lease is held (it reads the leases
only on a batch, so an idle pass costs nothing)."""


class ProjectorPass:
    """A PartitionHandler applying several projections of one stream in one pass."""

    def __init__(
        self,
        projections: Sequence[Projection[Any]],
        read: Redis,
        write: Redis,
        instruments: Instruments = NO_INSTRUMENTS,
        archive: ArchiveReader | None = None,
        replication: Replication = NO_WAIT,
    ) -> None:
        """`replication`: the read Redis's replicas each batch's script waits for before the
        batch is acknowledged (REDIS_WAIT_REPLICAS)."""
        if not projections or len({p.stream(0) for p in projections}) != 1:
            raise ValueError("a pass needs projections of one stream")
        self._models = [
            PassModel(ProjectionHandler(p, read, instruments, replication=replication), write)
            for p in projections
        ]
        self._stream = projections[0].stream
        self.group = pass_group(projections[0].stream(0))
        self._read = read
        self._write = write
        self._instruments = instruments
        self._archive = archive
        self._replication = replication
        self._decoder = shared_decoder(self._models)
        self._position: dict[int, str] = {}
        """Per partition, the last entry of the pass's last batch."""
        self._behind: dict[int, set[str]] = {}
        """Per partition, the read models left out of the last batch (paused or behind)."""
        self._paused: dict[int, tuple[float, frozenset[str]]] = {}
        """Per partition, when the leases were looked at and the read models held by others."""

    @property
    def names(self) -> list[str]:
        return [model.name for model in self._models]

    def stream(self, partition: int) -> str:
        return self._stream(partition)

    def parkings(self, partition: int) -> list[Parking]:
        """Each read model's dead letters in this partition (the loop serves them)."""
        return [model.parking(partition) for model in self._models]

    async def ensure_group(self, partition: int) -> None:
        """The pass's group; made where the read models' own groups had got to, if any.
        Every read model is then caught up to where the group is when it idles (a new one
        is built from the archive and the stream)."""
        self._position[partition] = await take_over_groups(
            self._write,
            self.stream(partition),
            self.group,
            {model.group: keys.lease(model.group, partition) for model in self._models},
        )
        self._behind[partition] = {model.name for model in self._models}

    # --- a batch ------------------------------------------------------------------------

    async def handle(self, partition: int, entries: list[Entry]) -> None:
        if not entries:
            return
        until = before(entries[0].id)
        paused = await self._paused_models(partition)
        behind = self._behind.get(partition, set())
        ready = [m for m in self._models if m.name not in paused and m.name not in behind]
        lagging = [m for m in self._models if m.name not in paused and m.name in behind]
        if lagging:  # (after a takeover, a pause, a new read model: rarely)
            ready += await self._caught_up(partition, lagging, until)
        joined = await self._apply(partition, entries, ready, in_step=until) if ready else []
        self._position[partition] = entries[-1].id
        self._behind[partition] = {m.name for m in self._models if m not in joined}

    async def idle(self, partition: int) -> None:
        """Nothing new to read: catch up the read models left behind (back from a pause,
        swapped in by a rebuild, new) to where the pass is."""
        behind, position = self._behind.get(partition), self._position.get(partition)
        if not behind or position is None:
            return
        paused = await self._paused_models(partition)
        lagging = [m for m in self._models if m.name in behind and m.name not in paused]
        if lagging:
            joined = await self._caught_up(partition, lagging, position)
            behind.difference_update(model.name for model in joined)

    async def _caught_up(
        self, partition: int, models: list[PassModel], until: str
    ) -> list[PassModel]:
        """Catch `models` up to `until` (a chunk each): those that reached it."""
        checkpoints = await self._checkpoints(partition, models)
        reached: list[PassModel] = []
        for model in models:
            if await self._catch_up(model, partition, checkpoints[model.name], until):
                reached.append(model)
        return reached

    async def skip(self, partition: int, entry: Entry) -> None:
        """Move every read model at or behind `entry` past it (dead-lettered by the pass)."""
        checkpoints = await self._checkpoints(partition, self._models)
        behind = [
            model
            for model in self._models
            if parse_stream_id(checkpoints[model.name] or START) < parse_stream_id(entry.id)
        ]
        if behind:
            await self._write_script(
                partition, [(m, checkpoints[m.name], entry.id) for m in behind], []
            )

    async def _paused_models(self, partition: int) -> frozenset[str]:
        at, paused = self._paused.get(partition, (0.0, frozenset()))
        if time.monotonic() - at < PAUSES_EVERY_SECONDS:
            return paused
        async with self._write.pipeline(transaction=False) as pipe:
            for model in self._models:
                pipe.exists(keys.lease(model.group, partition))
            pipe.hmget(keys.paused_consumers(), [model.group for model in self._models])
            *held, stopped = await pipe.execute()
        now_paused = frozenset(
            m.name
            for m, h, s in zip(self._models, held, stopped, strict=True)
            if h or s  # its lease held by another, or an operator paused it (kernel/pauses.py)
        )
        if now_paused != paused:
            log.info("%s partition %d: paused read models %s", self.group, partition, now_paused)
        self._paused[partition] = (time.monotonic(), now_paused)
        return now_paused

    def _decode(self, entries: list[Entry], models: list[PassModel]) -> list[Head]:
        wanted = frozenset(kind for model in models for kind in model.shared or ())
        return decode_heads(entries, wanted, self._decoder)

    async def _checkpoints(self, partition: int, models: list[PassModel]) -> dict[str, str]:
        async with self._read.pipeline(transaction=False) as pipe:  # (a Cluster refuses MGET)
            for m in models:
                pipe.get(keys.checkpoint(m.name, partition))
            values = await pipe.execute()
        return {m.name: optional_text(v) or "" for m, v in zip(models, values, strict=True)}

    async def _catch_up(
        self, model: PassModel, partition: int, checkpoint: str, until: str
    ) -> bool:
        """Bring a read model behind the pass up to `until` (a chunk): whether it reached it."""
        if parse_stream_id(checkpoint or START) >= parse_stream_id(until):
            return True
        stream = self.stream(partition)
        if self._archive is not None:
            rows = await self._archive.read(
                partition, checkpoint or START, until, CATCH_UP_CHUNK, stream=stream
            )
        else:
            rows = range_entries(
                await self._write.xrange(
                    stream, f"({checkpoint or START}", until, count=CATCH_UP_CHUNK
                )
            )
        if not rows:  # nothing between: it is where the pass is (and says so)
            await self._write_script(partition, [(model, checkpoint, until)], [])
            return True
        log.info(
            "%s partition %d: %d entries caught up (%s)", model.name, partition, len(rows), stream
        )
        entries = [Entry(entry_id, partition, fields) for entry_id, fields in rows if fields]
        last = rows[-1][0]
        if entries:
            await self._apply(partition, entries, [model], last=last)
        else:
            await self._write_script(partition, [(model, checkpoint, last)], [])
        return len(rows) < CATCH_UP_CHUNK or last == until

    async def _apply(
        self,
        partition: int,
        entries: list[Entry],
        models: list[PassModel],
        *,
        last: str = "",
        in_step: str = "",
    ) -> list[PassModel]:
        """Apply the entries for each read model (after its checkpoint): their checkpoints
        and versions read in one round trip, their writes sent in one script. `in_step`:
        a read model whose checkpoint is before it (and not the pass's position) is left
        out, as behind. Returns the read models applied."""
        last = last or entries[-1].id
        heads = self._decode(entries, models)
        items = {m.name: await m.items(partition, entries, heads) for m in models}
        aggregates = {
            m.name: list(dict.fromkeys(v[0] for _, v, _ in items[m.name] if v is not None))
            for m in models
        }
        async with self._read.pipeline(transaction=False) as pipe:
            for m in models:  # one GET each: a Cluster's pipeline refuses MGET
                pipe.get(keys.checkpoint(m.name, partition))
            for m in models:
                if aggregates[m.name]:
                    pipe.hmget(keys.applied_versions(m.name, partition), aggregates[m.name])
            replied = await pipe.execute()
        found, versions_found = replied[: len(models)], replied[len(models) :]
        checkpoints = {m.name: optional_text(v) or "" for m, v in zip(models, found, strict=True)}
        replies = iter(versions_found)
        versions = {
            m.name: dict(zip(aggregates[m.name], (int(v or 0) for v in next(replies)), strict=True))
            if aggregates[m.name]
            else {}
            for m in models
        }
        if in_step:
            position = self._position.get(partition)
            models = [
                m
                for m in models
                if checkpoints[m.name] == position
                or parse_stream_id(checkpoints[m.name] or START) >= parse_stream_id(in_step)
            ]
        await self._project(partition, models, items, checkpoints, versions, last)
        return models

    async def _project(
        self,
        partition: int,
        models: list[PassModel],
        items: dict[str, list[Decoded]],
        checkpoints: dict[str, str],
        versions: dict[str, dict[str, int]],
        last: str,
    ) -> None:
        spans: list[Span] = []
        done: dict[str, Projected] = {}
        try:
            moves: list[tuple[PassModel, str, str]] = []
            changes: dict[tuple[View, str], list[str]] = {}
            tx = recorder()  # records the writes; never executed
            for model in models:
                after = parse_stream_id(checkpoints[model.name] or START)
                fresh = [item for item in items[model.name] if parse_stream_id(item[0].id) > after]
                projected = await model.project(partition, fresh, versions[model.name], spans)
                done[model.name] = projected
                model.record(partition, projected, tx)
                for change, contexts in projected.changes.items():
                    merged = changes.setdefault(change, [])
                    merged += contexts[: NOTICE_TRACES - len(merged)]
                if parse_stream_id(last) > after:
                    moves.append((model, checkpoints[model.name], last))
            position = f"{partition}:{last}"
            for (view, key), contexts in changes.items():
                tx.xadd(
                    keys.view_notices(partition),
                    notice_fields(ViewNotice(view, key, position, " ".join(contexts))),
                    maxlen=VIEW_NOTICES_MAXLEN,
                    approximate=True,
                )
            if moves:  # (no read model moves: every entry was at or before its checkpoint)
                await self._write_script(partition, moves, command_args(tx))
        except BaseException as exc:
            for span in spans:
                tracing.end(span, type(exc).__name__)
            raise
        for span in spans:
            tracing.end(span)
        for model in models:
            applied = done[model.name].applied
            if applied:
                self._instruments.applied(model.name, len(applied))
                if model.committed is not None:
                    model.committed(applied)

    async def _write_script(
        self, partition: int, moves: list[tuple[PassModel, str, str]], commands: list[list[str]]
    ) -> None:
        """One script: every command, and each (read model, expected, new) checkpoint."""
        applied = await run_apply(
            self._read,
            [keys.checkpoint(model.name, partition) for model, _, _ in moves],
            [arg for _, expected, new in moves for arg in (expected, new)],
            commands,
            self._replication,
        )
        if not applied:
            self._position.pop(partition, None)
            raise LeaseLost(f"{self.group} partition {partition}")


def projector_passes(
    projections: Sequence[Projection[Any]],
    read: Redis,
    write: Redis,
    instruments: Instruments = NO_INSTRUMENTS,
    archive: ArchiveReader | None = None,
    replication: Replication = NO_WAIT,
) -> list[ProjectorPass]:
    """One pass per stream the projections read (their order kept within each)."""
    by_stream: dict[str, list[Projection[Any]]] = {}
    for projection in projections:
        by_stream.setdefault(projection.stream(0), []).append(projection)
    return [
        ProjectorPass(group, read, write, instruments, archive, replication)
        for group in by_stream.values()
    ]
