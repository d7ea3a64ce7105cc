"""Following a notice stream on a real Redis: one stream per read, and healing by itself after
a batch failed, a stream was recreated below the cursor, or the server restarted."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from app.adapters.redis_client import connect
from app.web.stream_follower import StreamFollower
from tests.support.polling import eventually
from tests.support.redis_server import running_redis

STREAM = "{p0}:notices"


class Recording:
    """A Redis client that records the streams of each XREAD."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self.reads: list[list[str]] = []

    async def xread(self, streams: dict[str, str], **kwargs: Any) -> Any:
        self.reads.append(list(streams))
        return await self._redis.xread(streams, **kwargs)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._redis, name)


@contextlib.asynccontextmanager
async def following(
    redis: Any, fail_first: int = 0
) -> AsyncIterator[tuple[StreamFollower, list[str]]]:
    """A running follower of STREAM; yields it and the `n` field of every entry handled."""
    seen: list[str] = []
    failures = iter(range(fail_first))

    async def handle(batch: list[tuple[str, dict[str, str]]]) -> None:
        if next(failures, None) is not None:
            raise RedisConnectionError("lost the read model")
        seen.extend(fields["n"] for _, fields in batch)

    active = asyncio.Event()
    active.set()
    follower = StreamFollower(redis, STREAM, handle, active)
    task = asyncio.create_task(follower.run())
    try:
        await eventually(_async(lambda: follower.cursor), message="follower started")
        yield follower, seen
    finally:
        follower.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _async(check: Any) -> Any:
    async def probe() -> Any:
        return check()

    return probe


async def seen_all(seen: list[str], wanted: list[str]) -> None:
    await eventually(
        _async(lambda: list(seen)),
        until=lambda got: all(n in got for n in wanted),
        timeout=20,
        message=f"entries {wanted}",
    )


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = connect(redis_url)
    yield client
    await client.aclose()


async def test_each_read_names_one_stream(redis: Redis) -> None:
    """Redis Cluster refuses a read across slots: a follower reads its own stream only."""
    recording = Recording(redis)
    async with following(recording) as (_, seen):
        await redis.xadd(STREAM, {"n": "1"})
        await seen_all(seen, ["1"])
    assert recording.reads and all(streams == [STREAM] for streams in recording.reads)


async def test_a_batch_that_failed_on_redis_is_read_again(redis: Redis) -> None:
    async with following(redis, fail_first=2) as (_, seen):
        await redis.xadd(STREAM, {"n": "1"})
        await seen_all(seen, ["1"])
        await redis.xadd(STREAM, {"n": "2"})
        await seen_all(seen, ["1", "2"])
    assert seen == ["1", "2"]


async def test_a_stream_recreated_below_the_cursor_is_followed_again(redis: Redis) -> None:
    """An id ahead of the server's clock (a server whose clock went back, a failover), then
    the stream lost: new entries get ids below the cursor; the follower resumes anyway."""
    async with following(redis) as (follower, seen):
        await redis.xadd(STREAM, {"n": "ahead"}, id="99999999999999-0")
        await seen_all(seen, ["ahead"])
        assert follower.cursor == "99999999999999-0"
        await redis.delete(STREAM)
        await redis.xadd(STREAM, {"n": "after"})
        await seen_all(seen, ["ahead", "after"])


async def test_the_follower_resumes_after_the_server_restarts(tmp_path: Path) -> None:
    with running_redis(tmp_path / "redis") as server:
        client = connect(server.url)
        try:
            async with following(client) as (_, seen):
                await client.xadd(STREAM, {"n": "before"})
                await seen_all(seen, ["before"])
                server.kill()
                server.restart()
                await eventually(_async(lambda: server.process.poll() is None), timeout=20)

                async def add_after() -> bool:
                    try:
                        await client.xadd(STREAM, {"n": "after"})
                    except (RedisConnectionError, OSError):
                        return False
                    return True

                await eventually(add_after, timeout=30, interval=0.2, message="redis back")
                await seen_all(seen, ["before", "after"])
        finally:
            await client.aclose()


class CountedEvent(asyncio.Event):
    """An Event that counts the waits on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waits = 0

    async def wait(self) -> Literal[True]:
        self.waits += 1
        return await super().wait()


async def test_while_nobody_watches_nothing_is_read(redis: Redis) -> None:
    recording = Recording(redis)
    active = CountedEvent()

    async def handle(_batch: list[tuple[str, dict[str, str]]]) -> None:
        return None

    follower = StreamFollower(recording, STREAM, handle, active)  # type: ignore[arg-type]
    task = asyncio.create_task(follower.run())
    try:
        await redis.xadd(STREAM, {"n": "1"})
        await eventually(_async(lambda: active.waits), message="the follower waiting for a watcher")
        assert recording.reads == [] and follower.cursor is None
        active.set()
        await eventually(_async(lambda: recording.reads), message="reading once watched")
        assert recording.reads[0] == [STREAM]
    finally:
        follower.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
