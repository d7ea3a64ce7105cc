"""Push under bursts (issue 6): watchers that keep reading are never dropped and end with the
newest state of every item; only a socket that stops reading is closed (1013)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.kernel.keys import view_notices
from app.kernel.notices import ViewNotice, notice_fields
from tests.support.api_client import (
    Storefront,
    running_storefront,
    send,
    unique_sku,
    wait_for_command,
)
from tests.support.polling import eventually

WATCHERS = 100
ROWS = 1000
STALLED_LOG = "stopped reading"


@pytest.fixture(scope="module")
def storefront(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storefront]:
    with running_storefront(
        tmp_path_factory.mktemp("ws-bursts"),
        workers=("commands", "projector", "process"),
        WS_STALL_SECONDS="1",
        WS_MAX_PER_CLIENT=str(WATCHERS + 10),
    ) as made:
        yield made


def messages(frame: str | bytes) -> list[dict[str, Any]]:
    """The messages of one frame: an object, or an array of them (`?batch=1`)."""
    decoded = json.loads(frame)
    return decoded if isinstance(decoded, list) else [decoded]


@dataclass
class Watcher:
    """A catalog watcher that reads as fast as it can and keeps each product's last state."""

    connection: ClientConnection
    available: dict[str, int] = field(default_factory=dict)
    frames: int = 0

    def of(self, prefix: str) -> dict[str, int]:
        return {sku: n for sku, n in self.available.items() if sku.startswith(prefix)}

    async def read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in self.connection:
                self.frames += 1
                for message in messages(frame):
                    if message.get("type") == "view" and message["view"] == "catalog":
                        self.available[message["key"]] = message["data"]["available"]


async def subscribe_catalog(ws: ClientConnection) -> None:
    await ws.send(json.dumps({"subscribe": ["catalog"]}))
    while not any(m.get("type") == "subscribed" for m in messages(await ws.recv())):
        pass


def import_rows(prefix: str, rows: int, name: str = "Imported item") -> list[dict[str, Any]]:
    return [
        {
            "sku": f"{prefix}-{n:04d}",
            "name": f"{name} {n}",
            "price_cents": 100 + n,
            "initial_stock": n % 97,
        }
        for n in range(rows)
    ]


async def import_catalog(storefront: Storefront, rows: list[dict[str, Any]]) -> None:
    async with storefront.client("admin") as admin:
        response = await send(admin, {"type": "ImportCatalog", "products": rows})
        assert response.status_code == 202, response.text
        final = await wait_for_command(admin, response.json()["command_id"])
        assert final["status"] == "succeeded", final


async def catalog_of(storefront: Storefront, prefix: str) -> dict[str, int]:
    """Each product of `prefix` and its available stock, as the read model has it."""
    async with storefront.client() as anyone:
        response = await anyone.get("/api/products", params={"after": prefix, "limit": 1000})
        assert response.status_code == 200, response.text
    return {p["sku"]: p["available"] for p in response.json() if p["sku"].startswith(prefix)}


async def test_watchers_reading_through_a_1000_row_import_are_never_dropped(
    storefront: Storefront,
) -> None:
    """100 watchers (half one message per frame, half `?batch=1` arrays) read continuously
    while 1,000 products are imported: none is closed, and each ends with every product's
    available stock as the read model has it."""
    prefix = unique_sku("BURST")
    async with contextlib.AsyncExitStack() as stack:
        watchers = []
        for n in range(WATCHERS):
            ws = await stack.enter_async_context(
                storefront.ws("/api/ws?batch=1" if n % 2 else "/api/ws")
            )
            await subscribe_catalog(ws)
            watchers.append(Watcher(ws))
        readers = [asyncio.create_task(watcher.read()) for watcher in watchers]

        await import_catalog(storefront, import_rows(prefix, ROWS))
        expected = await eventually(
            lambda: catalog_of(storefront, prefix),
            until=lambda found: len(found) == ROWS,
            timeout=60,
            message="all rows projected",
        )

        async def behind() -> list[int]:
            return [n for n, w in enumerate(watchers) if w.of(prefix) != expected]

        await eventually(behind, until=lambda late: not late, timeout=60, message="every watcher")
        still_open = [not reader.done() for reader in readers]
        for reader in readers:
            reader.cancel()
    assert all(still_open), "a watcher was closed"
    assert any(w.frames < ROWS for w in watchers[1::2]), "batched watchers got arrays"
    assert STALLED_LOG not in storefront.web.output()


def small_receive_buffer_socket(port: int) -> socket.socket:
    """A TCP connection whose reader is small, so a client that stops reading fills fast."""
    made = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    made.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    made.connect(("127.0.0.1", port))
    return made


async def test_a_socket_that_stops_reading_is_closed_and_the_readers_are_not(
    storefront: Storefront,
) -> None:
    """With WS_STALL_SECONDS=1: a /ws page that stops reading (its TCP window closes) is
    closed with 1013 once a send waited 1 s; a JSON and an HTML watcher that read go on."""
    prefix = unique_sku("STALL")
    rows = import_rows(prefix, 200, name="A long product name " * 5)
    await import_catalog(storefront, rows)
    skus = [row["sku"] for row in rows]
    await eventually(
        lambda: catalog_of(storefront, prefix), until=lambda found: len(found) == len(skus)
    )
    page = "/ws?topics=catalog"
    stalled = await connect(
        f"{storefront.ws_url}{page}",
        sock=small_receive_buffer_socket(storefront.port),
        origin=storefront.origin,  # type: ignore[arg-type]
        max_queue=1,  # the client library stops reading the socket: nothing calls recv()
        compression=None,  # the bytes sent are the bytes that fill the OS buffers
        proxy=None,
    )
    redis = Redis.from_url(storefront.redis.url, decode_responses=True)
    try:
        async with (
            storefront.ws("/api/ws?batch=1") as json_ws,
            storefront.ws(page, origin=storefront.origin) as html_ws,
        ):
            await subscribe_catalog(json_ws)
            json_watcher = Watcher(json_ws)
            html_frames: list[str] = []
            readers = [
                asyncio.create_task(json_watcher.read()),
                asyncio.create_task(read_html(html_ws, html_frames)),
            ]

            async def announce_changes() -> bool:
                """Tell the hubs that every product changed (as projections do), until the
                server gave up on the stalled socket."""
                async with redis.pipeline(transaction=False) as pipe:
                    for sku in skus:
                        pipe.xadd(view_notices(0), notice_fields(ViewNotice("catalog", sku, "")))
                    await pipe.execute()
                return STALLED_LOG in storefront.web.output()

            await eventually(announce_changes, timeout=90, interval=0.1, message="stall seen")

            drained = 0
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(stalled.recv(), 20)
                    drained += 1
            assert stalled.close_code == 1013, (stalled.close_code, drained)

            async with storefront.client("admin") as admin:
                restock = await send(
                    admin, {"type": "RestockProduct", "sku": skus[0], "quantity": 5}
                )
                assert restock.status_code == 200, restock.text
            restocked = rows[0]["initial_stock"] + 5

            async def seen_by_both() -> tuple[int | None, int | None]:
                return json_watcher.available.get(skus[0]), last_available(html_frames, skus[0])

            await eventually(
                seen_by_both,
                until=lambda seen: seen == (restocked, restocked),
                timeout=20,
                message="both readers got the restock",
            )
            assert all(not reader.done() for reader in readers), "a reader was closed"
            for reader in readers:
                reader.cancel()
    finally:
        await redis.aclose()
        await stalled.close()


def last_available(frames: list[str], sku: str) -> int | None:
    """The available stock of `sku` in the last pushed row of it (HTML hooks of API.md)."""
    row = re.compile(
        rf'id="product-{re.escape(sku)}".*?data-field="available"[^>]*>\s*(\d+)\s*<', re.DOTALL
    )
    for frame in reversed(frames):
        found = row.findall(frame)
        if found:
            return int(found[-1])
    return None


async def read_html(ws: ClientConnection, frames: list[str]) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for frame in ws:
            frames.append(str(frame))
