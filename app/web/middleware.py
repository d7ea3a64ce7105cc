"""ASGI layers around the whole app: security headers on every answer, and the last catch;
the status an answer went out with, for the layers that record it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
    ),
]


class ResponseStatus:
    """Wraps an ASGI `send`, remembering the status it started the response with (500 while
    none was sent)."""

    __slots__ = ("_send", "code")

    def __init__(self, send: Send) -> None:
        self.code = 500
        self._send = send

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.code = message["status"]
        await self._send(message)


class SecurityHeaders:
    """Wraps the whole ASGI app (outside Starlette's own error middleware), so every HTTP
    answer carries the headers, a 500 included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


CrashHandler = Callable[[Request, Exception], Awaitable[Response]]


class CatchAll:
    """An exception no handler took becomes `on_crash`'s answer instead of escaping the app,
    which would make the server log it again and drop the keep-alive connection."""

    def __init__(self, app: ASGIApp, on_crash: CrashHandler) -> None:
        self.app = app
        self.on_crash = on_crash

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started:  # half an answer is out: nothing clean is left to say
                raise
            response = await self.on_crash(Request(scope, receive), exc)
            await response(scope, receive, send)
