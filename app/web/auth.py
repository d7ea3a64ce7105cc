"""Who is asking: the session cookie (HTTP and WebSocket alike), roles, CSRF, Origin."""

from __future__ import annotations

from starlette.requests import HTTPConnection, Request

from app.adapters.sessions import COOKIE, Session
from app.kernel.errors import Forbidden, Unauthenticated
from app.kernel.messages import ANONYMOUS, Actor
from app.services import Services

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def services_of(conn: HTTPConnection) -> Services:
    services: Services = conn.app.state.services
    return services


async def session_of(conn: HTTPConnection) -> Session | None:
    if "session" not in conn.scope.setdefault("state", {}):
        conn.scope["state"]["session"] = await services_of(conn).sessions.get(
            conn.cookies.get(COOKIE)
        )
    session: Session | None = conn.scope["state"]["session"]
    return session


def actor_of(session: Session | None) -> Actor:
    if session is None:
        return ANONYMOUS
    return Actor(username=session.username, roles=session.roles)


def own_origin(conn: HTTPConnection) -> str:
    configured = services_of(conn).settings.public_origin
    if configured:
        return configured
    scheme = "https" if conn.url.scheme in ("https", "wss") else "http"
    return f"{scheme}://{conn.headers.get('host', '')}"


def same_origin(conn: HTTPConnection) -> bool:
    origin = conn.headers.get("origin")
    if origin is not None:
        return origin == own_origin(conn)
    return conn.headers.get("sec-fetch-site") in ("same-origin", "none")


def from_another_site(conn: HTTPConnection) -> bool:
    """A browser's request made by another site's page: a foreign Origin, or no Origin and
    `Sec-Fetch-Site` saying another site. Scripts send neither and are not refused."""
    origin = conn.headers.get("origin")
    if origin is not None:
        return origin != own_origin(conn)
    return conn.headers.get("sec-fetch-site") in ("cross-site", "same-site")


def refuse_other_sites(conn: HTTPConnection) -> None:
    """CSRF for requests made before any session exists (signing in)."""
    if from_another_site(conn):
        raise Forbidden("Cross-site sign-in refused", code="csrf_failed")


def check_csrf(request: Request, session: Session | None) -> None:
    """Cookie-authenticated unsafe requests: same origin, or the session's X-CSRF-Token."""
    if session is None or request.method not in UNSAFE:
        return
    token = request.headers.get("x-csrf-token")
    if token is not None and token == session.csrf_token:
        return
    if same_origin(request):
        return
    raise Forbidden(
        "Cross-site request refused (send X-CSRF-Token or use the app's own pages)",
        code="csrf_failed",
    )


async def actor_for(request: Request) -> Actor:
    """The actor of an API request, with CSRF checked for cookie sessions."""
    session = await session_of(request)
    check_csrf(request, session)
    return actor_of(session)


async def require_user(request: Request) -> Actor:
    actor = await actor_for(request)
    if not actor.authenticated:
        raise Unauthenticated()
    return actor


async def require_admin(request: Request) -> Actor:
    actor = await require_user(request)
    if not actor.has_role("admin"):
        raise Forbidden("This needs the admin role")
    return actor
