"""What every full page needs: who is signed in, their bell and cart, the socket's topics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from app.domain.rules import CUSTOMER
from app.queries import notifications
from app.web.auth import actor_of, services_of, session_of
from app.web.cart import current_count
from app.web.viewer import NOBODY, Viewer


async def layout_context(request: Request, topics: Sequence[str]) -> dict[str, Any]:
    session = await session_of(request)
    services = services_of(request)
    base: dict[str, Any] = {
        "user": session.username if session else None,
        "roles": sorted(session.roles) if session else [],
        "is_admin": bool(session and "admin" in session.roles),
        "is_customer": bool(session and CUSTOMER in session.roles),
        "viewer": Viewer.of(actor_of(session)),
        "csrf": session.csrf_token if session else "",
        "topics": ",".join(topics),
        "path": request.url.path,
        "inbox": None,
        "cart_count": 0,
    }
    if session is not None:
        base["inbox"] = await notifications.inbox(services.read_side, session.username, limit=5)
        if base["is_customer"]:
            base["cart_count"] = await current_count(services, session.username)
    return base


def anonymous_context(request: Request) -> dict[str, Any]:
    """For when even the session cannot be read (the data store is down)."""
    return {
        "user": None,
        "roles": [],
        "viewer": NOBODY,
        "topics": "catalog",
        "path": request.url.path,
    }


async def page(
    request: Request, template: str, topics: Sequence[str], status_code: int = 200, **context: Any
) -> Response:
    base = await layout_context(request, topics)
    return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]
        request, template, {**base, **context}, status_code=status_code
    )
