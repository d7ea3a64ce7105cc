"""What the pages of every area share: the renderer, sign-in checks, small responses."""

from __future__ import annotations

from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from app.adapters.sessions import Session
from app.kernel.errors import Forbidden, Unauthenticated
from app.kernel.messages import Actor
from app.web.auth import actor_for, session_of
from app.web.render import Renderer


def renderer(request: Request) -> Renderer:
    made: Renderer = request.app.state.renderer
    return made


def html(
    fragment: str, status_code: int = 200, headers: dict[str, str] | None = None
) -> HTMLResponse:
    return HTMLResponse(fragment, status_code=status_code, headers=headers)


def login_redirect(request: Request) -> Response:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


async def signed_in(request: Request) -> Session | None:
    return await session_of(request)


async def admin_session(request: Request) -> Session:
    session = await session_of(request)
    if session is None or "admin" not in session.roles:
        raise Forbidden("This page is for admins")
    return session


async def customer(request: Request) -> Actor:
    """The signed-in sender of a form (CSRF checked); 401 when nobody is signed in."""
    actor = await actor_for(request)
    if not actor.authenticated:
        raise Unauthenticated()
    return actor


def form_text(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name, default)
    return value if isinstance(value, str) else default
