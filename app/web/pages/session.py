"""Signing in and out with the HTML form (the JSON API has its own: app/web/api.py)."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from app.adapters.login_throttle import TooManyAttempts
from app.adapters.sessions import COOKIE
from app.web.auth import actor_for, refuse_other_sites, services_of
from app.web.bodies import read_form
from app.web.layout import page
from app.web.login_tokens import (
    LOGIN_COOKIE,
    LOGIN_TOKEN_SECONDS,
    issue_login_token,
    login_token_valid,
)
from app.web.pages.common import form_text
from app.web.signin import secure_cookies, set_session_cookie, sign_in

MAX_LOGIN_FORM = 8192


def safe_next(target: str | None) -> str:
    """A path on this site to go to after signing in (never another site's address)."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or not target.isprintable()
    ):
        return "/"
    return target


async def login_page(request: Request) -> Response:
    return await login_form_page(request, next=safe_next(request.query_params.get("next")))


async def login_form_page(
    request: Request,
    *,
    next: str,
    status_code: int = 200,
    error: str = "",
    username: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    """The login page, with a fresh pre-session token (hidden field + its cookie)."""
    services = services_of(request)
    token = issue_login_token(services.settings.secret_key, time.time())
    response = await page(
        request,
        "pages/login.html",
        ["catalog"],
        status_code=status_code,
        next=next,
        error=error,
        username=username,
        login_token=token.field,
    )
    response.headers.update(headers or {})
    response.set_cookie(
        LOGIN_COOKIE,
        token.cookie,
        max_age=LOGIN_TOKEN_SECONDS,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        path="/login",
    )
    return response


async def login_form(request: Request) -> Response:
    refuse_other_sites(request)
    form = await read_form(request, MAX_LOGIN_FORM)
    username = form_text(form, "username")
    password = form_text(form, "password")
    target = safe_next(form_text(form, "next", "/"))
    services = services_of(request)
    if not login_token_valid(
        services.settings.secret_key,
        request.cookies.get(LOGIN_COOKIE),
        form_text(form, "login_token"),
        time.time(),
    ):
        return await login_form_page(
            request,
            next=target,
            status_code=403,
            error="This sign-in form has expired. Please sign in again.",
            username=username,
        )
    try:
        user = await sign_in(request, username, password)
    except TooManyAttempts as exc:
        return await login_form_page(
            request,
            next=target,
            status_code=429,
            error=f"Too many failed sign-ins. Try again in {exc.retry_after} seconds.",
            username=username,
            headers=exc.headers,
        )
    if user is None:
        return await login_form_page(
            request,
            next=target,
            status_code=401,
            error="Wrong username or password",
            username=username,
        )
    token, _session = await services.sessions.create(user.username, user.roles)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, token, user.username)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


async def logout_form(request: Request) -> Response:
    await actor_for(request)
    await services_of(request).sessions.delete(request.cookies.get(COOKIE))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


routes: list[BaseRoute] = [
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login_form, methods=["POST"]),
    Route("/logout", logout_form, methods=["POST"]),
]
