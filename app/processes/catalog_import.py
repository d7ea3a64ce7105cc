"""ImportCatalog's runner: each row is a CreateProduct of its own, run in batches.

Row commands get ids derived from the import's id, so an import picked up again after a crash
skips the rows already done instead of failing them as duplicates. The import's final
position covers every row's commit, whatever partition it landed in.
"""

from __future__ import annotations

from app.domain.catalog_import import ImportCatalog
from app.kernel.bus import CommandBus
from app.kernel.command_status_store import CommandStatusStore
from app.kernel.errors import problem
from app.kernel.messages import CommandEnvelope, FieldError, Outcome
from app.kernel.positions import covering
from app.kernel.registry import Runner

CHUNK = 250


def import_runner(statuses: CommandStatusStore) -> Runner:
    async def run(envelope: CommandEnvelope, bus: CommandBus) -> Outcome:
        command: ImportCatalog = bus.registry.decode_body(envelope.type, envelope.body)
        partition = bus.partition(envelope)
        actor = envelope.actor
        total = len(command.products)
        rejected: list[FieldError] = []
        positions: list[str | None] = []
        await statuses.report_progress(partition, envelope.command_id, 0, total)
        for start in range(0, total, CHUNK):
            indexes = range(start, min(start + CHUNK, total))
            rows = [
                bus.envelope(
                    command.products[index].as_command(),
                    actor,
                    base_id=f"{envelope.command_id}.{index}",
                    internal=True,
                )
                for index in indexes
            ]
            outcomes = await bus.execute_batch(rows, "queued")
            for index, outcome in zip(indexes, outcomes, strict=True):
                if outcome.error is not None:
                    message = f"{outcome.error.code}: {outcome.error.detail}"
                    rejected.append(FieldError(f"$.products[{index}]", message))
                positions.append(outcome.position)
            await statuses.report_progress(partition, envelope.command_id, indexes[-1] + 1, total)
        position = covering(positions)
        if rejected:
            detail = f"{len(rejected)} of {total} rows were rejected; the other rows were imported"
            error = problem(
                "import_rows_rejected",
                409,
                detail,
                rejected[:1000],
                title="Some rows were rejected",
            )
            return await bus.finish(envelope, "failed", error, position)
        return await bus.finish(envelope, "succeeded", position=position)

    return run
