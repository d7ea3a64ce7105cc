"""A user's in-app notifications and unread count."""

from __future__ import annotations

import msgspec
from redis.asyncio import Redis

from app.kernel import keys as kernel_keys
from app.kernel.clock import iso
from app.kernel.notices import ViewNotice, notice_fields
from app.kernel.projection import VIEW_NOTICES_MAXLEN
from app.projections import keys
from app.projections.notifications import INBOX, Notification, NotificationsProjection

PROJECTIONS = (NotificationsProjection.name,)


class NotificationView(msgspec.Struct, frozen=True):
    id: str
    order_id: str
    text: str
    at: str | None


class Inbox(msgspec.Struct, frozen=True):
    unread: int
    items: list[NotificationView]


_decoder = msgspec.json.Decoder(Notification)


async def inbox(read: Redis, user: str, limit: int = 20) -> Inbox:
    return (await inboxes(read, [user], limit))[0]


async def inboxes(read: Redis, users: list[str], limit: int = 20) -> list[Inbox]:
    """Several users' inboxes in one round trip, in the order asked."""
    if not users:
        return []
    async with read.pipeline(transaction=False) as pipe:
        for user in users:
            pipe.get(keys.unread(user))
            pipe.lrange(keys.notifications(user), 0, limit - 1)
        replies = await pipe.execute()
    return [
        Inbox(
            unread=int(unread or 0),
            items=[
                NotificationView(n.id, n.order_id, n.text, iso(n.at))
                for n in map(_decoder.decode, raw)
            ],
        )
        for unread, raw in zip(replies[::2], replies[1::2], strict=True)
    ]


async def mark_read(read: Redis, user: str) -> None:
    """The unread counter is the user's own inbox state, outside the order domain."""
    async with read.pipeline(transaction=True) as tx:
        tx.set(keys.unread(user), 0)
        tx.xadd(
            kernel_keys.view_notices(),
            notice_fields(ViewNotice(INBOX, user, "")),
            maxlen=VIEW_NOTICES_MAXLEN,
            approximate=True,
        )
        await tx.execute()
