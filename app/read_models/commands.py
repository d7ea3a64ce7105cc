"""Commands: each command's status, pushed to its sender as it moves (not a projection's read
model: the command statuses live on the write side, announced by the status scripts on each
partition's `{pN}:notices`, which app/web/live_views.py follows)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from app.kernel.command_status import CommandStatus, Progress
from app.kernel.command_status_store import CommandStatusStore
from app.kernel.errors import NotFound
from app.kernel.messages import Actor, Problem
from app.kernel.partitions import partition_of_command
from app.kernel.views import View
from app.web.live_models import (
    Audience,
    LiveReadModel,
    Region,
    RegionRequest,
    fragment,
    item_id,
    owner,
)

if TYPE_CHECKING:
    from app.services import Services

COMMANDS = View("commands")
"""Its live view: key `<sender>/<command id>`."""


class CommandMessage(msgspec.Struct, tag_field="type", tag="command"):
    """A command's status, pushed to its sender: the newest one replaces any not yet sent."""

    command_id: str
    status: str
    step: str | None
    progress: Progress | None
    error: Problem | None
    position: str | None


def command_message(_key: str, _position: str | None, view: CommandStatus) -> CommandMessage:
    return CommandMessage(
        command_id=view.command_id,
        status=view.status,
        step=view.steps[-1].name if view.steps else None,
        progress=view.progress,
        error=view.error,
        position=view.position,
    )


async def load_statuses(
    statuses: CommandStatusStore, partitions: int, owned_keys: list[str]
) -> list[CommandStatus | None]:
    located = [(partition_of_command(item_id(key), partitions), item_id(key)) for key in owned_keys]
    found = await statuses.read(located)
    return [
        stored.view if stored is not None and stored.sender == owner(key) else None
        for key, stored in zip(owned_keys, found, strict=True)
    ]


async def visible_status(services: Services, actor: Actor, command_id: str) -> CommandStatus:
    """A command's status, for its sender and admins; NotFound for anyone else."""
    partition = partition_of_command(command_id, services.settings.partitions)
    stored = None if partition is None else await services.statuses.get(partition, command_id)
    if stored is None or not (actor.has_role("admin") or stored.sender == actor.username):
        raise NotFound("No such command")
    return stored.view


async def status(asked: RegionRequest[Services]) -> list[CommandStatus]:
    return [await visible_status(asked.services, asked.actor, asked.path["command_id"])]


DECLARED: LiveReadModel[Services, CommandStatus] = LiveReadModel(
    view=COMMANDS,
    load=lambda services, owned: load_statuses(
        services.statuses, services.settings.partitions, owned
    ),
    fragment=fragment("command_status", item="c"),
    watchers=Audience.OWNER,
    message=command_message,
    regions=(
        Region(
            "command",
            "/fragments/commands/{command_id}",
            status,
            swap="outerHTML",
            target="find .command-status",
        ),
    ),
)
