"""The status page's history (admin): the last half hour charted, pushed every 5 s while an
admin watches. Made of the command log's buckets and what each web process samples."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.kernel.views import View
from app.queries.history import History, history
from app.web.charts import history_charts
from app.web.live_models import Audience, Fragment, LiveReadModel, view_message

if TYPE_CHECKING:
    from app.services import Services

HISTORY = View("history")
"""Its live view. Nothing announces it: it is pushed every SECONDS."""
SECONDS = 5.0


async def load(services: Services, keys: list[str]) -> list[History | None]:
    found = await history(services.read_side)
    return [found for _key in keys]


DECLARED: LiveReadModel[Services, History] = LiveReadModel(
    view=HISTORY,
    load=load,
    fragment=Fragment(("admin_history",), lambda found: {"charts": history_charts(found)}),
    watchers=Audience.ADMINS,
    topic="admin",
    message=view_message("admin", positioned=False),
    every=SECONDS,
    refresh=("history",),
)
