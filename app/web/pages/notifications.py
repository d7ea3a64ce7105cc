"""A customer's notifications: the inbox page, and marking them read (the bell's live region
is declared in app/read_models/notifications.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.queries import notifications
from app.read_models.notifications import BELL
from app.web.auth import services_of
from app.web.layout import page
from app.web.pages.common import customer, html, login_redirect, renderer, signed_in


async def notifications_page(request: Request) -> Response:
    session = await signed_in(request)
    if session is None:
        return login_redirect(request)
    inbox = await notifications.inbox(services_of(request).read_side, session.username, limit=50)
    return await page(request, "pages/notifications.html", ["notifications"], full_inbox=inbox)


async def mark_read(request: Request) -> Response:
    actor = await customer(request)
    assert actor.username is not None
    read = services_of(request).read_side
    await notifications.mark_read(read, actor.username)
    inbox = await notifications.inbox(read, actor.username, limit=BELL)
    return html(renderer(request).bell(inbox))


routes: list[BaseRoute] = [
    Route("/notifications", notifications_page),
    Route("/ui/notifications/read", mark_read, methods=["POST"]),
]
