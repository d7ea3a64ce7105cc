"""/api/ws sockets of the load test: one per customer following its commands, and the
catalog watchers measuring push latency. A socket the server closes is counted and reopened."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import aiohttp
import msgspec

from app.loadtest.client import Credentials, LoadClient
from app.loadtest.stats import commit_ms
from app.loadtest.wire import Push, Subscribe, pushes

REOPEN_DELAY = 0.2
QUIET_SECONDS = 0.5
SETTLE_SECONDS = 10.0
_encoder = msgspec.json.Encoder()


class SocketStats(msgspec.Struct):
    """What one kind of socket saw; `push_ms` is drained by the shard's ticks."""

    dropped: int = 0
    close_codes: dict[str, int] = {}
    messages: int = 0
    push_ms: list[float] = []
    last_message: float = 0.0
    """When the last message came (monotonic seconds)."""


async def follow(
    client: LoadClient,
    who: Credentials | None,
    topic: str,
    on_push: Callable[[Push, float, float], None],
    stats: SocketStats,
    ready: asyncio.Event,
) -> None:
    """Subscribe to `topic` and hand every message to `on_push` with its receive time and the
    time the subscription was confirmed (wall seconds) until cancelled; `ready` is set then."""
    while True:
        subscribed = 0.0
        try:
            async with await client.socket(who) as ws:
                await ws.send_str(_encoder.encode(Subscribe([topic])).decode())
                async for message in ws:
                    if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        break
                    received = time.time()
                    for push in pushes(message.data):
                        if push.type == "subscribed":
                            subscribed = received
                            ready.set()
                        elif push.type == "error":
                            raise RuntimeError(f"/api/ws refused {topic}: {push.code}")
                        else:
                            stats.messages += 1
                            stats.last_message = time.monotonic()
                            on_push(push, received, subscribed)
                code = str(ws.close_code)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            code = type(exc).__name__
        stats.dropped += 1
        stats.close_codes[code] = stats.close_codes.get(code, 0) + 1
        await asyncio.sleep(REOPEN_DELAY)


def catalog_latency(stats: SocketStats) -> Callable[[Push, float, float], None]:
    """Push latency of each catalog view: receive time minus the commit time in its position.
    Changes committed before the socket subscribed (the hub's catch-up) are not pushes."""

    def record(push: Push, received: float, subscribed: float) -> None:
        committed = commit_ms(push.position) if push.view == "catalog" else None
        if committed is not None and committed >= subscribed * 1000:
            stats.push_ms.append(received * 1000 - committed)

    return record


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def settled(stats: SocketStats, changed: bool, since: float) -> None:
    """Wait for the pushes still on their way when the load ended (monotonic `since`): until
    the sockets have been quiet for QUIET_SECONDS, and, if the load `changed` what they
    watch, have had a message at all; at most SETTLE_SECONDS."""
    deadline = since + SETTLE_SECONDS
    while (now := time.monotonic()) < deadline:
        quiet = now - max(stats.last_message, since)
        if quiet >= QUIET_SECONDS and (stats.messages or not changed):
            return
        await asyncio.sleep(max(0.01, min(QUIET_SECONDS - quiet, deadline - now)))
