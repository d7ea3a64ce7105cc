"""The consumer groups the status page watches."""

from __future__ import annotations

from app.kernel.command_worker import GROUP as COMMANDS_GROUP
from app.kernel.projection import group_name
from app.processes.fulfilment import GROUP as FULFILMENT_GROUP
from app.projections.registry import ALL
from app.queries.admin_status import Watched

_SOURCES = {"command_log": "journal", "notifications": "integration"}


def watched_consumers() -> list[Watched]:
    result = [
        Watched(name, "projection", group_name(name), _SOURCES.get(name, "events")) for name in ALL
    ]
    result.append(Watched("fulfilment", "process", FULFILMENT_GROUP, "events"))
    result.append(Watched("commands", "queue", COMMANDS_GROUP, "commands"))
    return result
