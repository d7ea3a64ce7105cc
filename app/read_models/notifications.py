"""Notifications: each user's inbox (the bell), for that user; the notifier writes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.projections.notifications import INBOX, NotificationsProjection
from app.queries import notifications
from app.queries.notifications import Inbox
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

BELL = 5
"""Notifications the bell holds."""


async def bell(asked: RegionRequest[Services]) -> list[Inbox]:
    """The asker's bell; nothing for someone signed out."""
    user = asked.actor.username
    return [] if user is None else [await notifications.inbox(asked.services.read_side, user, BELL)]


DECLARED: LiveReadModel[Services, Inbox] = LiveReadModel(
    view=INBOX,
    projections=(
        # not rebuildable: the inbox holds what its users did with it (read or not), which no
        # stream records
        Feed(
            NotificationsProjection,
            lambda setup: NotificationsProjection(setup.settings.integration_retention_seconds),
            worker="notifier",
            rebuildable=False,
        ),
    ),
    load=lambda services, users: notifications.inboxes(services.read_side, users),
    fragment=fragment("bell", item="inbox"),
    watchers=Audience.OWNER,
    message=view_message("notifications", positioned=False),
    regions=(Region("bell", "/fragments/bell", bell, swap="outerHTML"),),
)
