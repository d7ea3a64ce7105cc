"""Signing in, for POST /api/session and the login form alike: where an attempt comes from
(its address, a known device), the throttle, and the cookies a successful sign-in sets."""

from __future__ import annotations

import hashlib
import ipaddress

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from app.adapters.login_throttle import LoginAttempt
from app.adapters.sessions import COOKIE
from app.adapters.users import User
from app.web.auth import services_of, session_of
from app.web.login_tokens import DEVICE_COOKIE, DEVICE_SECONDS, device_cookie, known_device


def client_address(conn: HTTPConnection) -> str:
    """The client's address (from a trusted proxy's header, see FORWARDED_ALLOW_IPS); an IPv6
    address counts by its /64, which one client usually holds whole."""
    host = conn.client.host if conn.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


async def login_attempt(request: Request, username: str) -> LoginAttempt:
    """The attempt's address, and its device when the browser is known for `username`:
    it holds a valid session of that user, or that user's signed device cookie."""
    address = client_address(request)
    session = await session_of(request)
    if session is not None and session.username == username:
        token = request.cookies.get(COOKIE, "")
        return LoginAttempt(address, "session:" + hashlib.sha256(token.encode()).hexdigest())
    secret = services_of(request).settings.secret_key
    device = known_device(secret, request.cookies.get(DEVICE_COOKIE))
    if device is not None and device.username == username:
        return LoginAttempt(address, "device:" + device.device)
    return LoginAttempt(address)


async def sign_in(request: Request, username: str, password: str) -> User | None:
    """The user, or None for wrong credentials; TooManyAttempts while the throttle says wait."""
    attempt = await login_attempt(request, username)
    return await services_of(request).users.sign_in(username, password, attempt)


def secure_cookies(request: Request) -> bool:
    return services_of(request).settings.production or request.url.scheme == "https"


def set_session_cookie(request: Request, response: Response, token: str, username: str) -> None:
    """The session cookie, and the device cookie that makes this browser known for `username`."""
    settings = services_of(request).settings
    secure = secure_cookies(request)
    response.set_cookie(
        COOKIE,
        token,
        max_age=settings.session_ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )
    response.set_cookie(
        DEVICE_COOKIE,
        device_cookie(settings.secret_key, username),
        max_age=DEVICE_SECONDS,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )
