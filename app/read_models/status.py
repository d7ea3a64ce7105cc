"""The status page (admin): the pipeline's commands, consumers, workers and dead letters,
pushed every second while an admin watches. The command log is part of it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.kernel.views import View
from app.projections.command_log import CommandLogProjection
from app.projections.setup import ProjectorSetup
from app.queries.admin_status import AdminStatus, admin_status
from app.web.live_models import (
    Audience,
    Feed,
    LiveReadModel,
    Region,
    RegionRequest,
    fragment,
    view_message,
)

if TYPE_CHECKING:
    from app.services import Services

STATUS = View("status")
"""Its live view. Nothing announces it: it is pushed every SECONDS."""
SECONDS = 1.0


async def pipeline_status(services: Services) -> AdminStatus:
    # imported here: the consumers it lists derive from every declaration, this one included
    from app.consumers import watched_consumers

    return await admin_status(
        services.write, services.read, watched_consumers(), services.settings.partitions
    )


async def load(services: Services, keys: list[str]) -> list[AdminStatus | None]:
    status = await pipeline_status(services)
    return [status for _key in keys]


async def region(asked: RegionRequest[Services]) -> list[AdminStatus]:
    return [await pipeline_status(asked.services)]


def command_log(setup: ProjectorSetup) -> CommandLogProjection:
    return CommandLogProjection(setup.metrics.finished if setup.metrics else None)


DECLARED: LiveReadModel[Services, AdminStatus] = LiveReadModel(
    view=STATUS,
    projections=(Feed[ProjectorSetup](CommandLogProjection, command_log),),
    load=load,
    fragment=fragment("admin_status", item="s"),
    watchers=Audience.ADMINS,
    topic="admin",
    message=view_message("admin", positioned=False),
    every=SECONDS,
    refresh=("status",),
    regions=(Region("status", "/fragments/admin/status", region),),
)
