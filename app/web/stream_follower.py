"""Following one capped stream of change notices from where it left off, whatever Redis does.

Each follower reads one stream (one XREAD names one key), so on Redis Cluster every read goes
to the node holding that stream's slot; a read naming several partitions' streams would be
refused there (CROSSSLOT). While no socket is open it stops reading: sockets re-fetch their
views when they open, so a follower starts again a little before "now" by the server's clock.

It heals by itself: a batch that failed on a Redis error is read again; and when nothing
arrives, it checks that the server can still write past its cursor. A server that restarted
without its data, failed over to a machine whose clock is behind, or lost the stream, writes
new entries with ids below a cursor it never reached again; the follower then resumes from
the server's clock minus an overlap (a change pushed twice costs nothing: pushes re-read).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from app.kernel.consumer import INFRA_ERRORS
from app.kernel.positions import parse_stream_id
from app.kernel.redis_types import stream_entries, text

log = logging.getLogger(__name__)

Handle = Callable[[list[tuple[str, dict[str, str]]]], Awaitable[None]]
"""Handles a batch of entries: (entry id, fields) each."""

RESUME_OVERLAP_MS = 5000
BLOCK_MS = 1000
BATCH = 500
RETRY_SECONDS = 1.0


class StreamFollower:
    def __init__(self, redis: Redis, stream: str, handle: Handle, active: asyncio.Event) -> None:
        self._redis = redis
        self.stream = stream
        self._handle = handle
        self._active = active
        self.cursor: str | None = None
        """The last entry handled (or where reading starts); None while not following."""
        self._stopping = False

    def stop(self) -> None:
        """End `run` (with a cancel of its task: the Redis client may turn a cancel that meets
        its own read timeout into a timeout error, which alone would be retried)."""
        self._stopping = True

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except INFRA_ERRORS as exc:
                if self._stopping:
                    return
                log.warning(
                    "%s: redis unavailable (%s); resuming from %s", self.stream, exc, self.cursor
                )
                await asyncio.sleep(RETRY_SECONDS)

    async def _step(self) -> None:
        if not self._active.is_set():
            self.cursor = None
            await self._active.wait()
            return
        if self.cursor is None:
            self.cursor = await self._recent()
        reply = await self._redis.xread({self.stream: self.cursor}, count=BATCH, block=BLOCK_MS)
        entries = stream_entries(reply)
        if not entries:
            self.cursor = await self._resync(self.cursor)
            return
        try:
            await self._handle([(entry_id, fields) for _, entry_id, fields in entries])
        except INFRA_ERRORS:
            raise  # read again from the same cursor
        except Exception:
            log.exception("%s: %d notices could not be handled", self.stream, len(entries))
        self.cursor = entries[-1][1]

    async def _server_ms(self) -> int:
        seconds, micros = await self._redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def _recent(self) -> str:
        return f"{max(await self._server_ms() - RESUME_OVERLAP_MS, 0)}-0"

    async def _resync(self, cursor: str) -> str:
        """The cursor, or a recent one if the server could no longer write past it."""
        now = await self._server_ms()
        newest = await self._redis.xrevrange(self.stream, count=1)
        last = parse_stream_id(text(newest[0][0])) if newest else (0, 0)
        if parse_stream_id(cursor) <= max((now, 0), last):
            return cursor
        recent = await self._recent()
        log.warning(
            "%s: the server is behind cursor %s; resuming at %s", self.stream, cursor, recent
        )
        return recent
