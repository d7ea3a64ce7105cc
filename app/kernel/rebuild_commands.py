"""Operators' rebuild actions as commands: build a shadow, swap it in, or abandon it.

Each is an async admin command; the command worker's runner does the work (a rebuild reads
its streams in chunks, between the worker's other work), so the action is authorized,
idempotent and journaled like any command, and its status follows the rebuild: its progress
while the shadow is built, then `succeeded` (the diff is on the status page) or `failed`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any

import msgspec
from redis.asyncio import Redis

from app.kernel.archive.reader import ArchiveReader
from app.kernel.bus import CommandBus
from app.kernel.command_status_store import CommandStatusStore
from app.kernel.dead_letter_commands import OperatorCommand
from app.kernel.errors import problem
from app.kernel.handlers import INFRA_ERRORS
from app.kernel.messages import CommandEnvelope, Outcome
from app.kernel.projection import Projection
from app.kernel.rebuild import RebuildBusy, RebuildError, ShadowRebuild
from app.kernel.rebuild_state import RebuildState
from app.kernel.registry import CommandSpec, Runner

RUNNER_CHUNK = 2000
"""Smaller chunks than the CLI's: the worker's other commands wait at most one chunk."""

ProjectionName = Annotated[
    str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}\Z", description="a projection's name")
]


class RebuildProjection(OperatorCommand, frozen=True):
    projection: ProjectionName


class SwapRebuild(OperatorCommand, frozen=True):
    projection: ProjectionName


class AbandonRebuild(OperatorCommand, frozen=True):
    projection: ProjectionName


Rebuildable = Mapping[str, Callable[[], Projection[Any]]]
"""Projection name → a fresh instance of it: the projections a rebuild may replay."""


def rebuild_runner(
    read: Redis,
    projections: Rebuildable,
    statuses: CommandStatusStore,
    lease_ms: int,
    archive: ArchiveReader | None = None,
) -> Runner:
    """`lease_ms`: the projectors' leases (see ShadowRebuild.cut); `archive`: the events
    trimmed from the streams."""

    async def run(envelope: CommandEnvelope, bus: CommandBus) -> Outcome:
        command = bus.registry.decode_body(envelope.type, envelope.body)
        make = projections.get(command.projection)
        if make is None:
            return await bus.finish(
                envelope,
                "failed",
                problem("unknown_projection", 409, f"{command.projection} cannot be rebuilt"),
            )
        partition = bus.partition(envelope)

        async def progress(state: RebuildState) -> None:
            total = max(state.total, state.done, 1)
            await statuses.report_progress(partition, envelope.command_id, state.done, total)

        rebuild = ShadowRebuild(
            bus.redis,
            read,
            make(),
            bus.partitions,
            owner=envelope.command_id,  # a re-run after a crash holds the same lock
            by=envelope.sender or "",
            chunk=RUNNER_CHUNK,
            on_progress=progress,
            lease_ms=lease_ms,
            archive=archive,
        )
        began = False
        try:
            if isinstance(command, RebuildProjection):
                await rebuild.start()
                began = True
                await rebuild.follow()
                await rebuild.cut(swap=False)
            elif isinstance(command, SwapRebuild):
                await rebuild.resume()
                began = True
                await rebuild.cut(swap=True)
            else:
                await rebuild.acquire()
                await rebuild.abandon()
        except RebuildBusy as exc:
            return await bus.finish(envelope, "failed", problem("rebuild_running", 409, str(exc)))
        except RebuildError as exc:
            if began:
                await rebuild.fail(str(exc))
            return await bus.finish(envelope, "failed", problem("rebuild_failed", 409, str(exc)))
        except INFRA_ERRORS:
            raise  # the command stays queued: run again once Redis is back
        except Exception as exc:
            if began:
                await rebuild.fail(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            await rebuild.close()
        return await bus.finish(envelope, "succeeded")

    return run


def rebuild_specs(runner: Runner, roles: frozenset[str]) -> list[CommandSpec[Any, Any]]:
    """The three commands, for a registry: `roles` may send them (admins)."""
    return [
        CommandSpec(command, None, _no_aggregate, roles=roles, mode="async", runner=runner)
        for command in (RebuildProjection, SwapRebuild, AbandonRebuild)
    ]


def _no_aggregate(command: Any) -> str:
    return ""
