"""Every consumer of the pipeline by the name operators see: its kind, group and stream."""

from __future__ import annotations

from app.kernel import keys
from app.kernel.command_worker import GROUP as COMMANDS_GROUP
from app.kernel.pass_groups import pass_group
from app.kernel.projection import group_name
from app.processes.fulfilment import GROUP as FULFILMENT_GROUP
from app.projections.registry import ALL, PROJECTOR, REBUILDABLE
from app.queries.admin_status import Watched

_SOURCES = {"command_log": "journal", "notifications": "integration"}
_STREAMS = {"events": keys.events, "journal": keys.journal}


def watched_consumers() -> list[Watched]:
    result = [
        Watched(
            name,
            "projection",
            group_name(name),
            _SOURCES.get(name, "events"),
            rebuildable=name in REBUILDABLE,
            reader=pass_group(_STREAMS[_SOURCES.get(name, "events")](0))
            if name in PROJECTOR
            else "",
        )
        for name in ALL
    ]
    result.append(Watched("fulfilment", "process", FULFILMENT_GROUP, "events"))
    result.append(Watched("commands", "queue", COMMANDS_GROUP, "commands"))
    return result


def consumer_groups() -> dict[str, str]:
    """Consumer name (as the status page shows it) → its consumer group."""
    return {w.name: w.group for w in watched_consumers()}
