"""The kernel is reusable: a second domain (tests/domain_example/, tallies) on a real Redis.

Its command goes through the kernel's bus and commit, the kernel's projector runtime applies
its projection, its query reads the row back, and a WebSocket watcher — over the same hub,
live views and broadcaster as the storefront's, wired here from its one declaration — gets
the pushed fragment (/ws) and the JSON message (/api/ws). Nothing of the storefront is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from jinja2 import Environment, FileSystemLoader
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import ClientConnection, connect

from app.adapters.embedded_redis import free_port
from app.kernel import keys
from app.kernel.bus import CommandBus
from app.kernel.commit import CommitStore
from app.kernel.consumer import PartitionedConsumer
from app.kernel.leases import Leases
from app.kernel.messages import ANONYMOUS, Actor
from app.kernel.partitions import partition_of
from app.kernel.projection import ProjectionHandler
from app.kernel.read_side import ReadSide
from app.kernel.registry import Registry
from app.web.broadcaster import PushLimits
from app.web.hub import Hub
from app.web.live import NoticeStream, live_view, view_change
from app.web.live_models import audiences, grant
from app.web.metrics import WebMetrics
from tests.domain_example.projection import TallyRow
from tests.domain_example.query import tallies
from tests.domain_example.read_model import DECLARED, TEMPLATES
from tests.domain_example.tally import COUNTERS, SPEC, AddToTally
from tests.support.polling import eventually

PARTITIONS = 2
COUNTER = Actor("carol", COUNTERS)
TOPICS = audiences([DECLARED])


async def _alone() -> int:
    return 1


@contextlib.asynccontextmanager
async def serving(redis: Redis) -> AsyncIterator[str]:
    """The hub for the one declared read model, behind two sockets, on a free port: its URL."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)
    hub = Hub(
        [live_view(DECLARED, ReadSide(redis, PARTITIONS), env)],
        [NoticeStream(redis, keys.view_notices(p), view_change) for p in range(PARTITIONS)],
        PushLimits(stall_seconds=5, max_pending=100, max_per_client=10),
        WebMetrics(),
    )

    async def watch(websocket: WebSocket) -> None:
        granted, _refused = grant(TOPICS, ANONYMOUS, websocket.query_params["topics"].split(","))
        await websocket.accept()
        html = websocket.url.path == "/ws"
        client = hub.broadcaster.admit(
            websocket, "html" if html else "json", "fragments" if html else "single", "watcher"
        )
        hub.broadcaster.subscribe(client, granted)
        await hub.broadcaster.serve(client, lambda _text: None)

    app = Starlette(routes=[WebSocketRoute("/ws", watch), WebSocketRoute("/api/ws", watch)])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    await hub.start()
    try:
        await eventually(_started(server, task), message="server started")
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await hub.stop()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), timeout=20)


def _started(server: uvicorn.Server, task: asyncio.Task[None]) -> Any:
    async def probe() -> bool:
        if task.done():
            task.result()
        return server.started

    return probe


@contextlib.asynccontextmanager
async def projecting(redis: Redis) -> AsyncIterator[None]:
    """The kernel's projector loop running the tallies' projection."""
    (feed,) = DECLARED.projections
    consumer = PartitionedConsumer(
        redis,
        [ProjectionHandler(feed.made(None), redis)],
        PARTITIONS,
        Leases(redis, "tally-projector"),
        _alone,
        block_ms=100,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop, tick=0.1))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), timeout=20)


async def received(watcher: ClientConnection, wanted: str) -> str:
    """The first frame holding `wanted`."""

    async def probe() -> str:
        return str(await asyncio.wait_for(watcher.recv(), timeout=5))

    return await eventually(probe, until=lambda frame: wanted in frame, message=wanted)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def test_a_command_reaches_a_watcher_through_the_kernel_and_one_declaration(
    redis: Redis,
) -> None:
    bus = CommandBus(redis, Registry([SPEC]), PARTITIONS, CommitStore(redis, 3600))
    async with (
        serving(redis) as url,
        projecting(redis),
        connect(f"{url}/ws?topics=tallies") as page,
        connect(f"{url}/api/ws?topics=tallies") as script,
    ):
        first = await bus.execute(bus.envelope(AddToTally("t1", 5), COUNTER), "inline")
        second = await bus.execute(bus.envelope(AddToTally("t1", 2), COUNTER), "inline")
        assert (first.status, second.status) == ("succeeded", "succeeded")

        async def probe() -> list[TallyRow | None]:
            return await tallies(ReadSide(redis, PARTITIONS), ["t1", "t2"])

        found = await eventually(probe, until=lambda rows: rows[0] == TallyRow("t1", 7, 2))
        assert found[1] is None

        fragment = await received(page, 'data-total="7"')
        assert '<p id="tally-t1" data-total="7" data-pushed>t1: 7 (2 additions)</p>' in fragment
        message = json.loads(await received(script, '"total":7'))
        assert message["type"] == "view"
        assert (message["view"], message["key"]) == ("tallies", "t1")
        assert message["data"] == {"tally_id": "t1", "total": 7, "adds": 2}
        assert message["position"].startswith(f"{partition_of('t1', PARTITIONS)}:")
