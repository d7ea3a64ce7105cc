"""The push side of one web process, wired from its parts (it knows no view by name).

- `Broadcaster` (broadcaster.py): sockets, topics, per-socket merging and batched frames;
- `LivePublisher` (live.py) with the live views (the storefront's: live_views.py, from the
  read models' declarations in app/read_models/): changes → pushes;
- one `StreamFollower` (stream_follower.py) per notice stream (the storefront's: the
  read-model changes on the read Redis, and each partition's command-status changes on the
  write Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import msgspec

from app.kernel import tracing
from app.web.broadcaster import Broadcaster, PushLimits
from app.web.live import LivePublisher, LiveView, NoticeStream
from app.web.metrics import WebMetrics
from app.web.stream_follower import Handle, StreamFollower


class Hub:
    def __init__(
        self,
        views: Sequence[LiveView[Any]],
        streams: Sequence[NoticeStream],
        limits: PushLimits,
        metrics: WebMetrics,
    ) -> None:
        self.broadcaster = Broadcaster(limits, metrics)
        self._publisher = LivePublisher(views, self.broadcaster, metrics.push_latency.observe)
        self.followers = [
            StreamFollower(
                source.redis, source.stream, self._handler(source), self.broadcaster.active
            )
            for source in streams
        ]
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def connections(self) -> int:
        return self.broadcaster.connections

    async def start(self) -> None:
        self.broadcaster.start()
        self._publisher.start()
        self._tasks = [
            asyncio.create_task(follower.run(), name=f"follow {follower.stream}")
            for follower in self.followers
        ]

    async def stop(self) -> None:
        for follower in self.followers:
            follower.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._publisher.stop()
        await self.broadcaster.stop()

    def _handler(self, source: NoticeStream) -> Handle:
        async def handle(batch: list[tuple[str, dict[str, str]]]) -> None:
            changes = [
                change
                for entry_id, fields in batch
                if (change := source.change(entry_id, fields)) is not None
            ]
            if tracing.enabled():  # a traced change's push span starts now
                taken = tracing.now_ns()
                changes = [
                    msgspec.structs.replace(c, taken_ns=taken) if c.trace else c for c in changes
                ]
            await self._publisher.changed(changes)

        return handle
