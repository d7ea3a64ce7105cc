"""Every consumer of the pipeline by the name operators see: its kind, group and stream."""

from __future__ import annotations

from app.kernel.command_worker import GROUP as COMMANDS_GROUP
from app.kernel.projection import group_name
from app.processes.fulfilment import GROUP as FULFILMENT_GROUP
from app.projections.registry import ALL, REBUILDABLE
from app.queries.admin_status import Watched

_SOURCES = {"command_log": "journal", "notifications": "integration"}


def watched_consumers() -> list[Watched]:
    result = [
        Watched(
            name,
            "projection",
            group_name(name),
            _SOURCES.get(name, "events"),
            rebuildable=name in REBUILDABLE,
        )
        for name in ALL
    ]
    result.append(Watched("fulfilment", "process", FULFILMENT_GROUP, "events"))
    result.append(Watched("commands", "queue", COMMANDS_GROUP, "commands"))
    return result


def consumer_groups() -> dict[str, str]:
    """Consumer name (as the status page shows it) → its consumer group."""
    return {w.name: w.group for w in watched_consumers()}
