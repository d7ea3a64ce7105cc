"""The WebSocket hub of one web process.

It follows two capped streams — read-model changes (read Redis) and command-status changes
(write Redis, one per partition) — from where it left off, so a Redis hiccup loses nothing.
Each change is rendered once per topic (HTML for htmx pages, JSON for scripts) and queued to
every subscribed socket. Queues are bounded: a client that cannot keep up is disconnected
(it reconnects and re-fetches), never buffered without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import msgspec
from redis.asyncio import Redis
from starlette.websockets import WebSocket

from app.kernel import keys
from app.kernel.command_status import CommandStatus
from app.kernel.consumer import INFRA_ERRORS
from app.kernel.messages import Actor
from app.kernel.partitions import partition_of_command
from app.kernel.redis_types import stream_entries
from app.queries import catalog, notifications, orders, sales
from app.queries.admin_status import admin_status
from app.services import Services
from app.web.metrics import WebMetrics
from app.web.render import Renderer
from app.web.watched import watched_consumers

log = logging.getLogger(__name__)

Kind = Literal["html", "json"]
TOPICS = ("catalog", "orders", "commands", "notifications", "admin")
SLOW_CLIENT_CLOSE_CODE = 1013  # "try again later": the htmx extension reconnects
ADMIN_TICK_SECONDS = 1.0
RESUME_OVERLAP_MS = 5000
_encoder = msgspec.json.Encoder()


def grant(actor: Actor, requested: Iterable[str]) -> tuple[set[str], list[str]]:
    """Topics this actor may watch (as hub topics), and the requested ones refused."""
    granted: set[str] = set()
    refused: list[str] = []
    for topic in requested:
        if topic == "catalog":
            granted.add("catalog")
        elif topic in ("orders", "commands", "notifications") and actor.username is not None:
            if topic == "orders" and actor.has_role("admin"):
                granted.add("orders:*")
            else:
                granted.add(f"{topic}:{actor.username}")
        elif topic == "admin" and actor.has_role("admin"):
            granted.add("admin")
        else:
            refused.append(topic)
    return granted, refused


@dataclass(eq=False)
class Client:
    websocket: WebSocket
    actor: Actor
    kind: Kind
    outbox: asyncio.Queue[str]
    topics: set[str] = field(default_factory=set)
    closed: bool = False

    async def pump(self) -> None:
        """Send what is queued, in order, until the socket goes away."""
        while True:
            message = await self.outbox.get()
            await self.websocket.send_text(message)


class Hub:
    def __init__(self, services: Services, renderer: Renderer, metrics: WebMetrics) -> None:
        self._services = services
        self._render = renderer
        self._metrics = metrics
        self._topics: dict[str, set[Client]] = {}
        self._clients: set[Client] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._admin_dirty: set[str] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._has_clients = asyncio.Event()

    @property
    def connections(self) -> int:
        return len(self._clients)

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        partitions = self._services.settings.partitions
        status_streams = [keys.status_notices(p) for p in range(partitions)]
        self._tasks = [
            asyncio.create_task(
                self._follow(self._services.read, [keys.view_notices()], self._on_views),
                name="hub-views",
            ),
            asyncio.create_task(
                self._follow(self._services.write, status_streams, self._on_statuses),
                name="hub-statuses",
            ),
            asyncio.create_task(self._admin_ticker(), name="hub-admin"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in list(self._clients):
            await self._close(client, 1012)  # "service restart": clients reconnect

    # --- clients ----------------------------------------------------------------------------

    def connect(self, websocket: WebSocket, actor: Actor, kind: Kind) -> Client:
        client = Client(
            websocket, actor, kind, asyncio.Queue(self._services.settings.ws_queue_size)
        )
        self._clients.add(client)
        self._has_clients.set()
        self._metrics.ws_connections.labels(kind).inc()
        return client

    def subscribe(self, client: Client, topics: set[str]) -> None:
        for topic in topics - client.topics:
            self._topics.setdefault(topic, set()).add(client)
        client.topics |= topics

    def disconnect(self, client: Client) -> None:
        if client in self._clients:
            self._clients.discard(client)
            self._metrics.ws_connections.labels(client.kind).dec()
            if not self._clients:
                self._has_clients.clear()
        for topic in client.topics:
            members = self._topics.get(topic)
            if members is not None:
                members.discard(client)
                if not members:
                    del self._topics[topic]
        client.closed = True

    def send(self, client: Client, message: str) -> None:
        if client.closed:
            return
        try:
            client.outbox.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("closing slow socket of %s", client.actor.username or "anonymous")
            self._metrics.ws_dropped.inc()
            self.disconnect(client)
            closing = asyncio.create_task(self._close(client, SLOW_CLIENT_CLOSE_CODE))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def _close(self, client: Client, code: int) -> None:
        self.disconnect(client)
        with contextlib.suppress(Exception):
            await client.websocket.close(code=code)

    def watching(self, topic: str) -> bool:
        return bool(self._topics.get(topic))

    def publish(
        self, topics: Iterable[str], html: Callable[[], str] | None, data: Callable[[], Any] | None
    ) -> None:
        """Render at most once per kind, then queue to every client of the topics."""
        members: set[Client] = set()
        for topic in topics:
            members |= self._topics.get(topic, set())
            self._metrics.pushes.labels(topic.split(":")[0]).inc()
        rendered: dict[Kind, str] = {}
        for client in members:
            if client.kind not in rendered:
                make = html if client.kind == "html" else data
                if make is None:
                    continue
                built = make()
                rendered[client.kind] = (
                    built if isinstance(built, str) else _encoder.encode(built).decode()
                )
            self.send(client, rendered[client.kind])

    # --- following Redis ----------------------------------------------------------------------

    async def _follow(
        self,
        redis: Redis,
        streams: list[str],
        handle: Callable[[list[dict[str, str]]], Awaitable[None]],
    ) -> None:
        cursors: dict[str, str] = {}
        while True:
            try:
                if not self._clients:
                    # Nobody to tell: stop reading. Sockets re-fetch their views on open, so
                    # the next first client needs only what comes after it connected.
                    cursors.clear()
                    await self._has_clients.wait()
                    continue
                if not cursors:
                    # start a little in the past (by the server's clock): a change that lands
                    # while a first socket re-fetches its views is pushed, not lost
                    seconds, micros = await redis.time()
                    start_ms = seconds * 1000 + micros // 1000 - RESUME_OVERLAP_MS
                    cursors = dict.fromkeys(streams, f"{max(start_ms, 0)}-0")
                reply = await redis.xread(cast(dict[Any, Any], cursors), count=500, block=1000)
                batch: list[dict[str, str]] = []
                for stream, entry_id, fields in stream_entries(reply):
                    cursors[stream] = entry_id
                    batch.append(fields)
                if batch:
                    await handle(batch)
            except asyncio.CancelledError:
                raise
            except INFRA_ERRORS as exc:
                log.warning("hub lost redis (%s); resuming from where it was", exc)
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("hub failed to handle a batch of notices")
                await asyncio.sleep(0.2)

    async def _on_views(self, batch: list[dict[str, str]]) -> None:
        latest: dict[tuple[str, str], str] = {}
        for fields in batch:
            latest[(fields.get("v", ""), fields.get("k", ""))] = fields.get("p", "")
        read = self._services.read
        products = {key: position for (view, key), position in latest.items() if view == "catalog"}
        if products:
            await self._push_products(read, products)
        for (view, key), position in latest.items():
            if view == "orders":
                await self._push_order(read, key, position)
            elif view == "notifications":
                await self._push_inbox(read, key)
            elif view == "admin":
                self._admin_dirty.add(key)

    async def _push_products(self, read: Redis, positions: dict[str, str]) -> None:
        """Every changed product of a batch read in one round trip, then pushed row by row."""
        if not self.watching("catalog"):
            return
        skus = list(positions)
        for sku, product in zip(skus, await catalog.get_products(read, skus), strict=True):
            if product is not None:
                self._push_product(sku, product, positions[sku])

    def _push_product(self, sku: str, product: catalog.ProductView, position: str) -> None:
        self.publish(
            ["catalog"],
            lambda: self._render.product_row(product, oob=True),
            lambda: {
                "type": "view",
                "view": "catalog",
                "key": sku,
                "position": position,
                "data": product,
            },
        )

    async def _push_order(self, read: Redis, key: str, position: str) -> None:
        customer, _, order_id = key.partition("/")
        topics = [f"orders:{customer}", "orders:*"]
        if not any(self.watching(t) for t in topics):
            return
        order = await orders.get_order(read, order_id)
        if order is None:
            return
        self.publish(
            topics,
            lambda: self._render.order_push(order),
            lambda: {
                "type": "view",
                "view": "orders",
                "key": order_id,
                "position": position,
                "data": order,
            },
        )

    async def _push_inbox(self, read: Redis, user: str) -> None:
        topic = f"notifications:{user}"
        if not self.watching(topic):
            return
        inbox = await notifications.inbox(read, user)
        self.publish(
            [topic],
            lambda: self._render.bell(inbox, oob=True),
            lambda: {
                "type": "view",
                "view": "notifications",
                "key": user,
                "position": None,
                "data": inbox,
            },
        )

    async def _on_statuses(self, batch: list[dict[str, str]]) -> None:
        latest: dict[str, str] = {}
        for fields in batch:
            latest[fields.get("c", "")] = fields.get("u", "")
        partitions = self._services.settings.partitions
        for command_id, sender in latest.items():
            topic = f"commands:{sender}"
            if not sender or not self.watching(topic):
                continue
            partition = partition_of_command(command_id, partitions)
            if partition is None:
                continue
            stored = await self._services.statuses.get(partition, command_id)
            if stored is None:
                continue
            self._publish_status(topic, stored.view)

    def _publish_status(self, topic: str, view: CommandStatus) -> None:
        self.publish(
            [topic],
            lambda: self._render.command_status(view, oob=True),
            lambda: command_message(view),
        )

    async def _admin_ticker(self) -> None:
        """Admin views: the status page every second, the rest when they changed."""
        last_status = 0.0
        while True:
            await asyncio.sleep(0.25)
            if not self.watching("admin"):
                self._admin_dirty.clear()
                continue
            try:
                now = time.monotonic()
                if now - last_status >= ADMIN_TICK_SECONDS:
                    last_status = now
                    await self._push_admin_status()
                dirty, self._admin_dirty = self._admin_dirty, set()
                if dirty & {"sales", "low_stock"}:
                    await self._push_sales()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("admin push failed")

    async def _push_admin_status(self) -> None:
        services = self._services
        status = await admin_status(
            services.write, services.read, watched_consumers(), services.settings.partitions
        )
        self.publish(
            ["admin"],
            lambda: self._render.admin_status(status, oob=True),
            lambda: {
                "type": "view",
                "view": "admin",
                "key": "status",
                "position": None,
                "data": status,
            },
        )

    async def _push_sales(self) -> None:
        read = self._services.read
        dashboard = await sales.sales_dashboard(read)
        low = await sales.low_stock(read)
        self.publish(
            ["admin"],
            lambda: self._render.sales(dashboard, low, oob=True),
            lambda: {
                "type": "view",
                "view": "admin",
                "key": "sales",
                "position": None,
                "data": {"sales": dashboard, "low_stock": low},
            },
        )


def command_message(view: CommandStatus) -> dict[str, Any]:
    return {
        "type": "command",
        "command_id": view.command_id,
        "status": view.status,
        "step": view.steps[-1].name if view.steps else None,
        "progress": view.progress,
        "error": view.error,
        "position": view.position,
    }
