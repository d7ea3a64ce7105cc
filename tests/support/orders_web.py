"""The real web app served by uvicorn inside the test's event loop, and signed-in clients.

In-process so the test, the app and the worker loops share one loop (no process start-up
cost), yet everything goes through real HTTP and real WebSockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from app.adapters.embedded_redis import free_port
from app.config import Settings
from app.web.app import create_app
from tests.support.polling import eventually

PASSWORDS = {"admin": "admin-pass", "alice": "alice-pass", "bob": "bob-pass"}
COOKIE = "sf_session"


@contextlib.asynccontextmanager
async def running_web(settings: Settings) -> AsyncIterator[str]:
    """Serve create_app(settings) on a free port until the block ends: its base URL.

    Outside production the app seeds the development users; this waits until they exist.
    """
    port = free_port()
    app = create_app(msgspec.structs.replace(settings, port=port))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    base_url = f"http://127.0.0.1:{port}"
    try:
        await eventually(lambda: _serving(server, task), timeout=30, message="web started")
        yield base_url
    finally:
        server.should_exit = True
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), timeout=20)


async def _serving(server: uvicorn.Server, task: asyncio.Task[None]) -> bool:
    if task.done():
        task.result()  # re-raise why it stopped
    return server.started


@dataclass
class User:
    """A signed-in user: an HTTP client with the session cookie and the CSRF header."""

    name: str
    http: httpx.AsyncClient

    @property
    def token(self) -> str:
        token = self.http.cookies.get(COOKIE)
        assert token is not None
        return token


async def sign_in(stack: contextlib.AsyncExitStack, base_url: str, name: str) -> User:
    client = await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, timeout=15))

    async def login() -> httpx.Response:
        return await client.post(
            "/api/session", json={"username": name, "password": PASSWORDS[name]}
        )

    reply = await eventually(
        login,
        until=lambda r: r.status_code == 200,
        timeout=30,
        interval=0.1,
        message=f"{name} can sign in (seeded)",
    )
    client.headers["X-CSRF-Token"] = reply.json()["csrf_token"]
    return User(name, client)


@dataclass
class Socket:
    """A JSON push connection (/api/ws) that keeps every message it received."""

    connection: ClientConnection
    received: list[dict[str, Any]] = field(default_factory=list)

    async def next(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await self.connection.recv())
        self.received.append(message)
        return message

    async def until(
        self, wanted: Callable[[dict[str, Any]], bool], within: float = 30.0
    ) -> dict[str, Any]:
        """The first message received so far that matches, else read on until one does."""
        for message in self.received:
            if wanted(message):
                return message
        async with asyncio.timeout(within):
            while True:
                message = await self.next()
                if wanted(message):
                    return message

    async def subscribe(self, topics: list[str]) -> dict[str, Any]:
        """Ask for topics; the `subscribed` answer also proves everything queued before it
        was delivered (a client's messages go out in order)."""
        await self.connection.send(json.dumps({"subscribe": topics}))
        async with asyncio.timeout(30):
            while True:
                message = await self.next()
                if message.get("type") == "subscribed":
                    return message


@contextlib.asynccontextmanager
async def push_socket(base_url: str, user: User | None) -> AsyncIterator[Socket]:
    url = base_url.replace("http://", "ws://") + "/api/ws"
    headers = {"Cookie": f"{COOKIE}={user.token}"} if user is not None else {}
    async with connect(url, additional_headers=headers) as connection:
        yield Socket(connection)
