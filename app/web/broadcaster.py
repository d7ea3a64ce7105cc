"""Push over WebSockets: topics, sockets, and per-socket merging of what is waiting to be sent.

It knows no view or topic by name: callers grant topics and publish rendered messages.

A publish renders its message at most once per kind of socket and viewer (the roles whose
controls an HTML fragment shows; JSON is the same for everyone) and files it, under a key (one
per view and item), in the pending map of every socket subscribed to one of its topics. A
newer message for a key replaces the one still waiting, so a burst costs each socket one
message per key however many changes it holds. Each socket's sender takes everything pending
at once and sends it in as few frames as its framing allows. Only a socket that stops reading
is dropped: one whose send does not complete within `stall_seconds`, or that has more than
`max_pending` keys waiting. It is closed with 1013; clients reconnect and re-fetch.

Over 300 lines, one job: a socket's life, from admission through merging to sending.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal, assert_never

from starlette.websockets import WebSocket, WebSocketDisconnect

from app.web.metrics import WebMetrics
from app.web.viewer import NOBODY, Viewer

log = logging.getLogger(__name__)

Kind = Literal["html", "json"]
"""What a socket is sent: HTML fragments (htmx pages) or JSON messages (scripts)."""
Framing = Literal["fragments", "array", "single"]
"""How pending messages become frames: HTML fragments side by side, a JSON array, or one
message per frame (the JSON form that predates batching)."""
Render = Callable[[Kind, Viewer], str]

TRY_AGAIN_LATER = 1013  # the htmx extension reconnects on it
UNSUPPORTED_DATA = 1003
POLICY_VIOLATION = 1008
SERVICE_RESTART = 1012
FRAME_CHARS = 256 * 1024
"""A frame holds messages up to about this size (a larger single message goes alone)."""
CLOSE_WAIT_SECONDS = 10.0
"""How long a close frame may wait behind unread data before the connection is just dropped."""


@dataclass(frozen=True)
class PushLimits:
    stall_seconds: float
    max_pending: int
    max_per_client: int


@dataclass(eq=False, slots=True)
class Client:
    """One open socket: what it watches and what is waiting to be sent to it."""

    websocket: WebSocket
    kind: Kind
    framing: Framing
    owner: str
    """Whose socket this is, for the per-client cap (a user, or an address)."""
    viewer: Viewer = NOBODY
    """Whom its HTML is rendered for (the controls its roles are shown)."""
    topics: set[str] = field(default_factory=set)
    pending: dict[Hashable, str] = field(default_factory=dict)
    wakeup: asyncio.Future[None] | None = None
    """Set while the sender waits for something to send."""
    close_code: int | None = None
    """Set when the server decides to close the socket, with the code to close it with."""
    sending_since: float | None = None
    sender: asyncio.Task[None] | None = None


def frames(framing: Framing, messages: list[str]) -> Iterator[str]:
    """The frames that carry `messages`, in order, each about FRAME_CHARS at most."""
    match framing:
        case "single":
            yield from messages
            return
        case "fragments":
            opening, separator, closing = "", "", ""
        case "array":
            opening, separator, closing = "[", ",", "]"
        case _:
            assert_never(framing)
    chunk: list[str] = []
    size = 0
    for message in messages:
        if chunk and size + len(message) > FRAME_CHARS:
            yield opening + separator.join(chunk) + closing
            chunk, size = [], 0
        chunk.append(message)
        size += len(message) + 1
    if chunk:
        yield opening + separator.join(chunk) + closing


def wake(client: Client) -> None:
    """Wake the client's sender if it waits (cheaper than an Event: one future per wait)."""
    waiter = client.wakeup
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


def envelope(kind: Kind, message: str) -> str:
    """A message as it sits in a frame: each HTML fragment in its own <template>, so fragments
    that cannot be siblings when parsed (a table row after a div) arrive intact."""
    match kind:
        case "html":
            return f"<template>{message}</template>"
        case "json":
            return message
        case _:
            assert_never(kind)


class Broadcaster:
    def __init__(self, limits: PushLimits, metrics: WebMetrics) -> None:
        self._limits = limits
        self._metrics = metrics
        self._topics: dict[str, set[Client]] = {}
        self._clients: set[Client] = set()
        self._owners: dict[str, int] = {}
        self._told = itertools.count()
        self._watchdog: asyncio.Task[None] | None = None
        self.active = asyncio.Event()
        """Set while at least one socket is open (followers of change streams wait on it)."""

    @property
    def connections(self) -> int:
        return len(self._clients)

    def watching(self, topic: str) -> bool:
        return bool(self._topics.get(topic))

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._watchdog = asyncio.create_task(self._watch_stalls(), name="push-watchdog")

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        for client in list(self._clients):
            self._drop(client, SERVICE_RESTART)

    # --- sockets ----------------------------------------------------------------------------

    def admit(
        self,
        websocket: WebSocket,
        kind: Kind,
        framing: Framing,
        owner: str,
        viewer: Viewer = NOBODY,
    ) -> Client:
        """A client for an accepted socket; over its owner's cap it is born closing (1008)."""
        client = Client(websocket, kind, framing, owner, viewer)
        if self._owners.get(owner, 0) >= self._limits.max_per_client:
            client.close_code = POLICY_VIOLATION
            self._metrics.ws_refused.labels("per_client_cap").inc()
            return client
        self._owners[owner] = self._owners.get(owner, 0) + 1
        self._clients.add(client)
        self.active.set()
        self._metrics.ws_connections.labels(kind).inc()
        return client

    def subscribe(self, client: Client, topics: Iterable[str]) -> None:
        if client not in self._clients:
            return
        for topic in set(topics) - client.topics:
            self._topics.setdefault(topic, set()).add(client)
            client.topics.add(topic)

    def disconnect(self, client: Client) -> None:
        if client not in self._clients:
            return
        self._clients.discard(client)
        left = self._owners[client.owner] - 1
        if left:
            self._owners[client.owner] = left
        else:
            del self._owners[client.owner]
        if not self._clients:
            self.active.clear()
        self._metrics.ws_connections.labels(client.kind).dec()
        for topic in client.topics:
            members = self._topics.get(topic)
            if members is not None:
                members.discard(client)
                if not members:
                    del self._topics[topic]
        client.pending.clear()

    # --- messages ---------------------------------------------------------------------------

    def publish(self, topics: Iterable[str], key: Hashable, render: Render) -> None:
        """Render at most once per kind and viewer; file under `key` for every client of the
        topics."""
        rendered: dict[tuple[Kind, Viewer], str] = {}
        for topic in topics:
            members = self._topics.get(topic)
            if not members:
                continue
            self._metrics.pushes.labels(topic.split(":")[0]).inc()
            for client in list(members):
                shown = (client.kind, client.viewer)
                message = rendered.get(shown)
                if message is None:
                    message = rendered[shown] = envelope(client.kind, render(*shown))
                self._put(client, key, message)

    def tell(self, client: Client, message: str) -> None:
        """A message for this client alone (an answer to it), never merged with another."""
        self._put(client, ("", next(self._told)), envelope(client.kind, message))

    def _put(self, client: Client, key: Hashable, message: str) -> None:
        if client.close_code is not None:
            return
        pending = client.pending
        if key not in pending and len(pending) >= self._limits.max_pending:
            if client in self._clients:
                log.warning("closing socket of %s: %d views waiting", client.owner, len(pending))
                self._metrics.ws_dropped.labels("backlog").inc()
                self._drop(client, TRY_AGAIN_LATER)
            return
        pending[key] = message
        wake(client)

    def _drop(self, client: Client, code: int) -> None:
        """Stop pushing to a client and have its socket closed with `code`."""
        self.disconnect(client)
        client.close_code = code
        wake(client)
        if client.sender is not None and client.sending_since is not None:
            client.sender.cancel()  # blocked on a peer that does not read

    # --- serving one socket -----------------------------------------------------------------

    async def serve(self, client: Client, on_text: Callable[[str], None]) -> None:
        """Send and receive until either side ends; then close with the reason, if ours."""
        if client.close_code is None:
            client.sender = asyncio.create_task(self._send(client))
            reader = asyncio.create_task(self._receive(client, on_text))
            tasks = (client.sender, reader)
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                for outcome in await asyncio.gather(*tasks, return_exceptions=True):
                    if isinstance(outcome, Exception):
                        log.error("socket of %s failed", client.owner, exc_info=outcome)
                self.disconnect(client)
        if client.close_code is not None:
            await self._close(client.websocket, client.close_code)

    async def _send(self, client: Client) -> None:
        websocket = client.websocket
        clock = asyncio.get_running_loop().time
        try:
            while client.close_code is None:
                if not client.pending:
                    client.wakeup = asyncio.get_running_loop().create_future()
                    await client.wakeup
                while client.pending and client.close_code is None:
                    batch, client.pending = client.pending, {}
                    for frame in frames(client.framing, list(batch.values())):
                        client.sending_since = clock()
                        await websocket.send_text(frame)
                        client.sending_since = None
        except (WebSocketDisconnect, RuntimeError):
            return  # the peer went away (or the socket was closed under us)

    async def _receive(self, client: Client, on_text: Callable[[str], None]) -> None:
        websocket = client.websocket
        while True:
            try:
                message = await websocket.receive()
            except RuntimeError:
                return  # the socket is already closed
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                client.close_code = UNSUPPORTED_DATA  # a binary frame: nothing here speaks it
                return
            on_text(text)

    async def _close(self, websocket: WebSocket, code: int) -> None:
        """Close with `code`; the frame waits behind unread data, for a bounded time."""
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, TimeoutError):
            async with asyncio.timeout(CLOSE_WAIT_SECONDS):
                await websocket.close(code)

    async def _watch_stalls(self) -> None:
        stall = self._limits.stall_seconds
        clock = asyncio.get_running_loop().time
        while True:
            await asyncio.sleep(min(stall / 4, 1.0))
            now = clock()
            for client in list(self._clients):
                since = client.sending_since
                if since is not None and now - since > stall:
                    log.warning("closing socket of %s: stopped reading", client.owner)
                    self._metrics.ws_dropped.labels("stalled").inc()
                    self._drop(client, TRY_AGAIN_LATER)
