"""`storefront loadtest` against a small fake of API.md (aiohttp, in this process): back-pressure
answers (503 overloaded + Retry-After) are shed and retried, pushes batched in JSON arrays
are read, orders without a push are found by polling, catalog pushes are timed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from app.loadtest.options import Account, LoadOptions
from app.loadtest.run import load_test

COOKIE = "sf_session"


class FakeStorefront:
    def __init__(self) -> None:
        self.posts = 0
        self.command_sockets: dict[str, set[web.WebSocketResponse]] = {}
        self.catalog_sockets: set[web.WebSocketResponse] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/session", self.sign_in)
        app.router.add_get("/api/products", self.products)
        app.router.add_post("/api/commands", self.command)
        app.router.add_get("/api/commands/{command_id}", self.status)
        app.router.add_get("/api/ws", self.socket)
        return app

    async def sign_in(self, request: web.Request) -> web.Response:
        body = await request.json()
        response = web.json_response(
            {"username": body["username"], "roles": ["customer"], "csrf_token": "csrf"}
        )
        response.set_cookie(COOKIE, body["username"])
        return response

    async def products(self, request: web.Request) -> web.Response:
        return web.json_response(
            [
                {
                    "sku": sku,
                    "name": sku,
                    "price_cents": 1,
                    "available": 99,
                    "sold": 0,
                    "status": "active",
                }
                for sku in ("A-1", "B-2", "C-3")
            ]
        )

    async def command(self, request: web.Request) -> web.Response:
        assert request.headers["X-CSRF-Token"] == "csrf"
        body = await request.json()
        assert body["type"] == "PlaceOrder" and 1 <= len(body["lines"]) <= 3
        self.posts += 1
        if self.posts % 3 == 0:
            return web.json_response(
                {
                    "type": "about:blank",
                    "title": "Overloaded",
                    "status": 503,
                    "code": "overloaded",
                    "detail": "busy",
                },
                status=503,
                headers={"Retry-After": "0"},
                content_type="application/problem+json",
            )
        command_id = f"c{self.posts}-0"
        user = request.cookies[COOKIE]
        if self.posts % 4 != 0:  # every 4th order gets no push: found by polling
            task = asyncio.create_task(self.push(user, command_id))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return web.json_response({"command_id": command_id, "status": "accepted"}, status=202)

    async def push(self, user: str, command_id: str) -> None:
        await asyncio.sleep(0.01)
        frame = [
            {
                "type": "command",
                "command_id": command_id,
                "status": "processing",
                "step": "processing",
                "progress": None,
                "error": None,
                "position": None,
            },
            {
                "type": "command",
                "command_id": command_id,
                "status": "succeeded",
                "step": "succeeded",
                "progress": None,
                "error": None,
                "position": "0:1-0",
            },
        ]
        for ws in list(self.command_sockets.get(user, ())):
            await ws.send_json(frame)
        position = f"0:{int(time.time() * 1000)}-0"
        view = {"type": "view", "view": "catalog", "key": "A-1", "position": position, "data": {}}
        for ws in list(self.catalog_sockets):
            await ws.send_json([view, {**view, "key": "B-2"}])

    async def status(self, request: web.Request) -> web.Response:
        command_id = request.match_info["command_id"]
        return web.json_response(
            {
                "command_id": command_id,
                "type": "PlaceOrder",
                "status": "succeeded",
                "accepted_at": "2026-01-01T00:00:00.000Z",
                "completed_at": "2026-01-01T00:00:00.009Z",
                "steps": [
                    {"name": "accepted", "at": "2026-01-01T00:00:00.000Z"},
                    {"name": "stock_reserved", "at": "2026-01-01T00:00:00.003Z"},
                    {"name": "payment_captured", "at": "2026-01-01T00:00:00.007Z"},
                    {"name": "succeeded", "at": "2026-01-01T00:00:00.009Z"},
                ],
                "progress": None,
                "error": None,
                "position": "0:1-0",
            }
        )

    async def socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        user = request.cookies.get(COOKIE)
        async for message in ws:
            topics = message.json()["subscribe"]
            if "commands" in topics and user:
                self.command_sockets.setdefault(user, set()).add(ws)
            if "catalog" in topics:
                self.catalog_sockets.add(ws)
            await ws.send_json({"type": "subscribed", "topics": topics})
        self.catalog_sockets.discard(ws)
        for sockets in self.command_sockets.values():
            sockets.discard(ws)
        return ws


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeStorefront, str]]:
    storefront = FakeStorefront()
    server = TestServer(storefront.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield storefront, f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


async def test_shed_orders_are_retried_and_every_outcome_is_found(
    fake: tuple[FakeStorefront, str],
) -> None:
    storefront, url = fake
    options = LoadOptions(
        url=url,
        shoppers=2,
        watchers=2,
        orders=10,
        duration=0.0,
        users=[Account("alice", "a"), Account("bob", "b")],
        poll_after=0.1,
        quiet=True,
        create_products=0,
    )
    report = await load_test(options)
    assert report.accepts.accepted == 10
    assert report.accepts.shed == storefront.posts - 10 > 0
    assert report.accepts.errors == 0
    assert report.orders.succeeded == 10
    assert report.orders.unfinished == 0
    assert report.orders.by_polling >= 1
    assert report.sampled == 10
    assert [step.transition for step in report.steps] == [
        "accepted → stock_reserved",
        "stock_reserved → payment_captured",
        "payment_captured → succeeded",
    ]
    assert report.end_to_end_ms.p50 == pytest.approx(9.0)
    assert report.push.messages > 0
    assert report.push.latency_ms.count > 0
    assert report.push.watchers_dropped == report.push.command_sockets_dropped == 0


async def test_open_loop_sheds_without_retrying(fake: tuple[FakeStorefront, str]) -> None:
    storefront, url = fake
    options = LoadOptions(
        url=url,
        shoppers=4,
        orders=9,
        duration=0.0,
        rate=200.0,
        poll_after=0.1,
        quiet=True,
        users=[Account("alice", "a")],
        create_products=0,
    )
    report = await load_test(options)
    assert storefront.posts == report.accepts.attempts == 9
    assert report.accepts.shed == 3
    assert report.orders.succeeded == 6
