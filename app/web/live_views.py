"""The storefront's live views, who may watch which topic, and where changes are announced.

The views and the topic grants derive from the read models' declarations (app/read_models/,
one module each; app/web/live_models.py says what a declaration holds): a new read model that
pages follow is its projection, its query, its template and its declaration — nothing here.

Topics: `catalog` (anyone); `orders:<user>`, `commands:<user>`, `notifications:<user>` (that
user); `orders:*` and `admin` (admins). Keys of per-user views start with their owner
(`alice/<order id>`), so an item is published to its owner's topic and nobody else's.

Changes are announced on two kinds of stream, both one per partition (a follower reads one
slot): the read models' `rm:notices:{pN}` (written by the projections with the view each
names) and the command statuses' `{pN}:notices` (every status notice is a change of the
`commands` view).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from jinja2 import Environment

from app.kernel import keys
from app.kernel.messages import Actor
from app.kernel.notices import read_status_notice
from app.kernel.positions import entry_time
from app.kernel.views import Change
from app.read_models import DECLARED
from app.read_models.commands import COMMANDS
from app.services import Services
from app.web import live_models
from app.web.live import LiveView, NoticeStream, live_view, view_change

TOPICS = live_models.audiences(DECLARED)
"""Each topic a client may ask for, and who may watch it."""


def grant(actor: Actor, requested: Iterable[str]) -> tuple[set[str], list[str]]:
    """The topics this actor may watch, of those requested, and the requested ones refused."""
    return live_models.grant(TOPICS, actor, requested)


def live_views(services: Services, env: Environment) -> list[LiveView[Any]]:
    return [live_view(model, services, env) for model in DECLARED]


# --- where changes are announced -------------------------------------------------------------


def status_change(entry_id: str, fields: dict[str, str]) -> Change | None:
    """`{pN}:notices` (written with command statuses, so its id's time is the commit's): a
    status notice, pushed to its sender."""
    notice = read_status_notice(fields)
    if notice is None or not notice.sender:
        return None
    return Change(
        COMMANDS,
        f"{notice.sender}/{notice.command_id}",
        None,
        at=entry_time(entry_id),
        trace=notice.trace,
    )


def notice_streams(services: Services) -> Sequence[NoticeStream]:
    partitions = range(services.settings.partitions)
    return [
        *(NoticeStream(services.read, keys.view_notices(p), view_change) for p in partitions),
        *(NoticeStream(services.write, keys.status_notices(p), status_change) for p in partitions),
    ]
