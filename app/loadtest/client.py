"""HTTP and WebSocket calls of API.md over one aiohttp session with a sized connection pool."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie
from types import TracebackType
from typing import Any

import aiohttp
import msgspec
from yarl import URL

from app.loadtest.options import Account
from app.loadtest.wire import Accepted, CommandStatus, Problem, Product, SignedIn

_encoder = msgspec.json.Encoder()
_signed_in = msgspec.json.Decoder(SignedIn)
_accepted = msgspec.json.Decoder(Accepted)
_problem = msgspec.json.Decoder(Problem)
_status = msgspec.json.Decoder(CommandStatus)
_products = msgspec.json.Decoder(list[Product])


class Credentials(msgspec.Struct, frozen=True):
    """A signed-in session: the Cookie header to send and its CSRF token."""

    username: str
    cookie: str
    csrf_token: str

    def headers(self) -> dict[str, str]:
        return {"Cookie": self.cookie, "X-CSRF-Token": self.csrf_token}


class Answer(msgspec.Struct, frozen=True):
    """What POST /api/commands answered: the status code, and what the body or headers say."""

    status: int
    command_id: str | None = None
    code: str | None = None
    retry_after: float | None = None


class LoadClient:
    """Use with `async with`; `connections` sizes the pool (keep-alive, no churn)."""

    def __init__(self, base_url: str, connections: int, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.ws_url = "ws" + self.base_url.removeprefix("http")
        self._connections = max(1, connections)
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> LoadClient:
        connector = aiohttp.TCPConnector(limit=self._connections, limit_per_host=0)
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # sessions travel as explicit headers
            timeout=aiohttp.ClientTimeout(total=self._timeout),
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use LoadClient with async with"
        return self._session

    async def sign_in(self, account: Account) -> Credentials:
        async with self.session.post(
            f"{self.base_url}/api/session",
            data=_encoder.encode({"username": account.username, "password": account.password}),
            headers={"Content-Type": "application/json"},
        ) as reply:
            body = await reply.read()
            if reply.status != 200:
                raise RuntimeError(f"sign in as {account.username}: {reply.status} {body!r}")
            cookie = SimpleCookie()
            for header in reply.headers.getall("Set-Cookie", []):
                cookie.load(header)
        signed = _signed_in.decode(body)
        jar = "; ".join(f"{name}={morsel.value}" for name, morsel in cookie.items())
        return Credentials(signed.username, jar, signed.csrf_token)

    async def send(self, command: Any, who: Credentials | None) -> Answer:
        """POST /api/commands; never raises for an HTTP status (only for transport errors)."""
        headers = {"Content-Type": "application/json", **(who.headers() if who else {})}
        async with self.session.post(
            f"{self.base_url}/api/commands", data=_encoder.encode(command), headers=headers
        ) as reply:
            body = await reply.read()
            retry_after = _seconds(reply.headers.get("Retry-After"))
            if reply.status in (200, 202):
                try:
                    return Answer(reply.status, command_id=_accepted.decode(body).command_id)
                except msgspec.DecodeError:
                    return Answer(reply.status)  # a bare endpoint (the client's ceiling)
            try:
                code = _problem.decode(body).code
            except msgspec.DecodeError:
                code = None
            return Answer(reply.status, code=code, retry_after=retry_after)

    async def command_status(self, command_id: str, who: Credentials) -> CommandStatus | None:
        async with self.session.get(
            f"{self.base_url}/api/commands/{command_id}", headers=who.headers()
        ) as reply:
            body = await reply.read()
            return _status.decode(body) if reply.status == 200 else None

    async def products(self) -> list[Product]:
        """The whole catalog, following `Link: rel="next"` pages."""
        found: list[Product] = []
        url: str | None = f"{self.base_url}/api/products?limit=500"
        while url:
            async with self.session.get(url) as reply:
                reply.raise_for_status()
                found += _products.decode(await reply.read())
                following = reply.links.get("next")
                url = str(reply.url.join(URL(str(following["url"])))) if following else None
        return found

    async def socket(self, who: Credentials | None) -> aiohttp.ClientWebSocketResponse:
        """An /api/ws socket (not a browser: no Origin), with `who`'s cookie if given."""
        return await self.session.ws_connect(
            f"{self.ws_url}/api/ws",
            headers={"Cookie": who.cookie} if who else None,
            timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
            max_msg_size=16 * 1024 * 1024,
        )


def _seconds(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is turned into seconds from now)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
