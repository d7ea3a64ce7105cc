"""A user's in-app notifications and unread count.

A user's notifications are kept per partition (the partition of the order each is about);
an inbox merges the partitions' newest, newest first, and adds up their unread counts."""

from __future__ import annotations

import msgspec

from app.kernel import keys as kernel_keys
from app.kernel.clock import iso
from app.kernel.notices import ViewNotice, notice_fields
from app.kernel.projection import VIEW_NOTICES_MAXLEN
from app.kernel.read_side import ReadSide, merged
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


def _newest_first(note: Notification) -> tuple[float, str]:
    return note.at, note.id


async def inbox(read: ReadSide, user: str, limit: int = 20) -> Inbox:
    return (await inboxes(read, [user], limit))[0]


async def inboxes(read: ReadSide, users: list[str], limit: int = 20) -> list[Inbox]:
    """Several users' inboxes in one round trip, in the order asked."""
    if not users:
        return []
    reads = []
    for user in users:
        reads.append(lambda pipe, p, user=user: pipe.get(keys.unread(p, user)))
        reads.append(
            lambda pipe, p, user=user: pipe.lrange(keys.notifications(p, user), 0, limit - 1)
        )
    replies = await read.gather(*reads)
    found = []
    for unread, lists in zip(replies[::2], replies[1::2], strict=True):
        pieces = ([_decoder.decode(raw) for raw in piece] for piece in lists)
        notes = merged(pieces, key=_newest_first, limit=limit, reverse=True)
        found.append(
            Inbox(
                unread=sum(int(count or 0) for count in unread),
                items=[NotificationView(n.id, n.order_id, n.text, iso(n.at)) for n in notes],
            )
        )
    return found


async def mark_read(read: ReadSide, user: str) -> None:
    """The unread counters are the user's own inbox state, outside the order domain. Each
    partition's is reset on its own (one slot each): a notification landing meanwhile is
    counted or not, as it would be a moment earlier or later."""
    async with read.redis.pipeline(transaction=False) as pipe:
        for partition in range(read.partitions):
            pipe.set(keys.unread(partition, user), 0)
        pipe.xadd(
            kernel_keys.view_notices(read.partition_of(user)),
            notice_fields(ViewNotice(INBOX, user, "")),
            maxlen=VIEW_NOTICES_MAXLEN,
            approximate=True,
        )
        await pipe.execute()
